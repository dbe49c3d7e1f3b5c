package boot_test

import (
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/agent/boot"
	"github.com/gitfleet/gitfleet/agent/bootenv"
	"github.com/gitfleet/gitfleet/agent/update"
	"github.com/google/go-cmp/cmp"
)

var (
	_ update.Bootloader = (*boot.Env)(nil)
	_ update.Bootloader = (*boot.Script)(nil)
)

// vars returns the variables of "name=value" strings, in order.
func vars(t testing.TB, kv ...string) *bootenv.Vars {
	t.Helper()
	v := new(bootenv.Vars)
	for _, s := range kv {
		name, value, _ := strings.Cut(s, "=")
		if err := v.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// lines returns v as "name=value" strings, nil for nil.
func lines(v *bootenv.Vars) []string {
	if v == nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(v.String(), "\n"), "\n")
}

func TestPowerOn(t *testing.T) {
	tests := []struct {
		name     string
		conv     boot.Convention
		env      []string
		want     string
		fallback bool
		save     []string // nil: nothing saved
	}{
		{name: "empty environment boots A", want: "A"},
		{name: "no trial", env: []string{"gitfleet_slot=B", "upgrade_available=0", "bootcount=5", "bootlimit=1"}, want: "B"},
		{name: "no trial, unset counter", env: []string{"gitfleet_slot=B"}, want: "B"},
		{
			name: "first boot of a trial", env: []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=0", "bootlimit=1"},
			want: "B", save: []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=1", "bootlimit=1"},
		},
		{
			name: "second boot of a one-boot trial falls back", env: []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=1", "bootlimit=1"},
			want: "A", fallback: true, save: []string{"gitfleet_slot=A", "upgrade_available=0", "bootcount=0", "bootlimit=1"},
		},
		{
			name: "third boot of a three-boot trial", env: []string{"gitfleet_slot=A", "upgrade_available=1", "bootcount=2", "bootlimit=3"},
			want: "A", save: []string{"gitfleet_slot=A", "upgrade_available=1", "bootcount=3", "bootlimit=3"},
		},
		{
			name: "trial without a limit never falls back", env: []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=99"},
			want: "B", save: []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=100"},
		},
		{
			name: "unset counter of a trial counts from 0", env: []string{"gitfleet_slot=B", "upgrade_available=1", "bootlimit=1"},
			want: "B", save: []string{"gitfleet_slot=B", "upgrade_available=1", "bootlimit=1", "bootcount=1"},
		},
		{
			name: "any other value of the slot variable is A", env: []string{"gitfleet_slot=b", "upgrade_available=1", "bootcount=1", "bootlimit=1"},
			want: "B", fallback: true, save: []string{"gitfleet_slot=B", "upgrade_available=0", "bootcount=0", "bootlimit=1"},
		},
		{
			name: "numbers as U-Boot reads them", env: []string{"gitfleet_slot=B", "upgrade_available=yes", "bootcount=7", "bootlimit=1"},
			want: "B",
		},
		{
			name: "hexadecimal limit", env: []string{"gitfleet_slot=B", "upgrade_available=01", "bootcount=0x0f", "bootlimit=0x10"},
			want: "B", save: []string{"gitfleet_slot=B", "upgrade_available=01", "bootcount=16", "bootlimit=0x10"},
		},
		{
			name: "renamed variables", conv: boot.Convention{Slot: "slot", UpgradeAvailable: "trial", BootCount: "n", BootLimit: "max"},
			env:  []string{"slot=A", "trial=1", "n=1", "max=1", "gitfleet_slot=A"},
			want: "B", fallback: true, save: []string{"slot=B", "trial=0", "n=0", "max=1", "gitfleet_slot=A"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := vars(t, tt.env...)
			before := env.String()
			d, err := tt.conv.PowerOn(env)
			if err != nil {
				t.Fatal(err)
			}
			if d.Group != tt.want || d.Fallback != tt.fallback {
				t.Errorf("PowerOn() boots %s (fallback %t), want %s (fallback %t)", d.Group, d.Fallback, tt.want, tt.fallback)
			}
			if diff := cmp.Diff(tt.save, lines(d.Save)); diff != "" {
				t.Errorf("PowerOn() saves (-want +got):\n%s", diff)
			}
			if got := env.String(); got != before {
				t.Errorf("PowerOn() changed its input to %q", got)
			}
		})
	}
}

func TestState(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want boot.State
		// booted is what State.Booted says.
		booted string
	}{
		{name: "empty", want: boot.State{Default: "A"}, booted: "A"},
		{name: "committed", env: []string{"gitfleet_slot=B", "upgrade_available=0", "bootcount=0", "bootlimit=1"}, want: boot.State{Default: "B", BootLimit: 1}, booted: "B"},
		{name: "armed, not booted yet", env: []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=0", "bootlimit=1"}, want: boot.State{Default: "B", Trial: true, BootLimit: 1}, booted: "A"},
		{name: "trial booted", env: []string{"gitfleet_slot=B", "upgrade_available=1", "bootcount=1", "bootlimit=1"}, want: boot.State{Default: "B", Trial: true, BootCount: 1, BootLimit: 1}, booted: "B"},
		{name: "upgrade_available whose low 32 bits are 0", env: []string{"upgrade_available=4294967296"}, want: boot.State{Default: "A"}, booted: "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boot.Convention{}.State(vars(t, tt.env...))
			if got != tt.want {
				t.Errorf("State() = %+v, want %+v", got, tt.want)
			}
			if b := got.Booted(); b != tt.booted {
				t.Errorf("State().Booted() = %s, want %s", b, tt.booted)
			}
		})
	}
}

func TestConventionValidate(t *testing.T) {
	tests := []struct {
		name    string
		conv    boot.Convention
		wantErr string
	}{
		{name: "defaults", conv: boot.Convention{}},
		{name: "renamed", conv: boot.Convention{Slot: "_slot2", UpgradeAvailable: "ua", Tries: 9}},
		{name: "name with '='", conv: boot.Convention{Slot: "a=b"}, wantErr: `slot is "a=b": use letters, digits and '_'`},
		{name: "name starting with a digit", conv: boot.Convention{BootCount: "1count"}, wantErr: `bootcount is "1count"`},
		{name: "name with a dot", conv: boot.Convention{BootLimit: "boot.limit"}, wantErr: `bootlimit is "boot.limit"`},
		{name: "shared name", conv: boot.Convention{Slot: "bootcount"}, wantErr: `slot and bootcount are both "bootcount"`},
		{name: "too many tries", conv: boot.Convention{Tries: 10}, wantErr: "tries is 10: want 1 to 9"},
		{name: "negative tries", conv: boot.Convention{Tries: -1}, wantErr: "tries is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.conv.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error saying %q", err, tt.wantErr)
			}
			if _, err := tt.conv.PowerOn(new(bootenv.Vars)); err == nil {
				t.Error("PowerOn with an invalid convention succeeded")
			}
			if _, err := boot.NewEnv(&boot.File{}, tt.conv); err == nil {
				t.Error("NewEnv with an invalid convention succeeded")
			}
		})
	}
}

// FuzzPowerOn checks the bootloader side on any values of the variables:
// it boots A or B, leaves its input alone, and saves exactly what the
// algorithm in its doc comment says.
func FuzzPowerOn(f *testing.F) {
	f.Add("B", "1", "0", "1")
	f.Add("A", "1", "1", "1")
	f.Add("x", "0x1", "18446744073709551615", "0x")
	f.Fuzz(func(t *testing.T, slotv, ua, count, limit string) {
		env := new(bootenv.Vars)
		for _, kv := range [][2]string{{"gitfleet_slot", slotv}, {"upgrade_available", ua}, {"bootcount", count}, {"bootlimit", limit}} {
			if env.Set(kv[0], kv[1]) != nil {
				return // a value no environment can hold
			}
		}
		before := env.String()
		c := boot.Convention{}
		s := c.State(env)
		d, err := c.PowerOn(env)
		if err != nil {
			t.Fatal(err)
		}
		if env.String() != before {
			t.Fatal("PowerOn changed its input")
		}
		if d.Group != "A" && d.Group != "B" {
			t.Fatalf("PowerOn boots %q", d.Group)
		}
		switch {
		case d.Fallback:
			after := c.State(d.Save)
			if d.Group == s.Default || after.Default != d.Group || after.Trial || after.BootCount != 0 {
				t.Fatalf("fallback from %+v boots %s and saves %+v", s, d.Group, after)
			}
		case s.Trial:
			if d.Save == nil || d.Group != s.Default || c.State(d.Save).BootCount != s.BootCount+1 {
				t.Fatalf("trial %+v boots %s and saves %v", s, d.Group, d.Save)
			}
		default:
			if d.Save != nil || d.Group != s.Default {
				t.Fatalf("no trial %+v boots %s and saves %v", s, d.Group, d.Save)
			}
		}
	})
}
