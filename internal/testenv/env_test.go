package testenv_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/gitfleet/gitfleet/internal/testenv"
)

// TestFailuresSayHowToStartTheServices checks that a test without its service fails, naming what is
// missing and the command that starts the services.
func TestFailuresSayHowToStartTheServices(t *testing.T) {
	start := []string{"make test", "scripts/with-services.sh go test ./internal/testenv/"}
	closed := testenv.FreeAddr(t)
	tests := []struct {
		name string
		env  map[string]string
		use  func(testing.TB)
		want []string
	}{
		{
			name: "MQTT unset",
			env:  map[string]string{"GITFLEET_TEST_MQTT_ADDR": ""},
			use:  func(t testing.TB) { testenv.MQTT(t) },
			want: append([]string{"GITFLEET_TEST_MQTT_ADDR"}, start...),
		},
		{
			name: "MQTT not answering",
			env: map[string]string{
				"GITFLEET_TEST_MQTT_ADDR":            closed,
				"GITFLEET_TEST_MQTT_USER":            "server",
				"GITFLEET_TEST_MQTT_PASSWORD":        "password",
				"GITFLEET_TEST_MQTT_DEVICE_USERS":    "device-1",
				"GITFLEET_TEST_MQTT_DEVICE_PASSWORD": "password",
				"GITFLEET_TEST_MQTT_TLS_ADDR":        closed,
				"GITFLEET_TEST_MQTT_CA":              "ca.crt",
				"GITFLEET_TEST_MQTT_CA_KEY":          "ca.key",
			},
			use:  func(t testing.TB) { testenv.MQTT(t) },
			want: append([]string{"does not answer at GITFLEET_TEST_MQTT_ADDR=" + closed}, start...),
		},
		{
			name: "PostgreSQL unset",
			env:  map[string]string{"GITFLEET_TEST_PG_DSN": ""},
			use:  func(t testing.TB) { testenv.Postgres(t) },
			want: append([]string{"GITFLEET_TEST_PG_DSN"}, start...),
		},
		{
			name: "PostgreSQL not answering",
			env:  map[string]string{"GITFLEET_TEST_PG_DSN": "postgres://postgres@" + closed + "/postgres?connect_timeout=5"},
			use:  func(t testing.TB) { testenv.Postgres(t) },
			want: append([]string{"GITFLEET_TEST_PG_DSN"}, start...),
		},
		{
			name: "S3 unset",
			env:  map[string]string{"GITFLEET_TEST_S3_ENDPOINT": ""},
			use:  func(t testing.TB) { testenv.S3(t) },
			want: append([]string{"GITFLEET_TEST_S3_ENDPOINT"}, start...),
		},
		{
			name: "program not installed",
			env:  map[string]string{"PATH": ""}, // mkenvimage is in /usr/bin
			use:  func(t testing.TB) { testenv.Tool(t, "mkenvimage") },
			want: []string{"apt-get install u-boot-tools", "make test"},
		},
		{
			name: "program not in tools.txt",
			use:  func(t testing.TB) { testenv.Tool(t, "gitfleet-no-such-program") },
			want: []string{"internal/testenv/tools.txt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, value := range tt.env {
				t.Setenv(name, value)
			}
			msg := fatalMessage(t, tt.use)
			if msg == "" {
				t.Fatalf("the test did not fail")
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("the failure does not say %q:\n%s", want, msg)
				}
			}
		})
	}
}

func TestMosquittoFailsWithItsLog(t *testing.T) {
	t.Parallel()
	msg := fatalMessage(t, func(t testing.TB) { testenv.Mosquitto(t, "no_such_option true") })
	if !strings.Contains(msg, "no_such_option") {
		t.Errorf("the failure does not show the broker's complaint about its configuration:\n%s", msg)
	}
}

// fatalMessage runs use with a testing.TB whose Fatalf records its message and ends use, as the real
// one ends a test, and returns the message: "" if use did not fail.
func fatalMessage(t *testing.T, use func(testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		use(r)
	}()
	<-done
	return r.msg
}

type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
