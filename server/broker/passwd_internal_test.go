package broker

import (
	"crypto/sha512"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestPasswordHashes(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789ab")
	sum := sha512.Sum512(append([]byte("secret"), salt...))
	sha := "$6$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(sum[:])
	ours, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hash string
	}{
		// Written by mosquitto_passwd 2.0.11 for the password "secret".
		{"mosquitto_passwd 2.0", "$7$101$FL6ZIayCz/iIbbNQ$P3wh/0SEZOgxW+Wyb5nV86gVjBB8EEzvTeMdD5nFaV+aZOz+e+/5oPFyn/EgXw9JotnZOyKbodr4UwG7NHtudg=="},
		{"HashPassword", ours},
		{"salted SHA-512", sha},
		{"bcrypt", string(bc)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHash(tc.hash)
			if err != nil {
				t.Fatal(err)
			}
			if !h.verify([]byte("secret")) {
				t.Error("the right password does not verify")
			}
			if h.verify([]byte("secreT")) {
				t.Error("a wrong password verifies")
			}
		})
	}
}

func TestParsePasswordsRefuses(t *testing.T) {
	good := "$7$101$FL6ZIayCz/iIbbNQ$P3wh/0SEZOgxW+Wyb5nV86gVjBB8EEzvTeMdD5nFaV+aZOz+e+/5oPFyn/EgXw9JotnZOyKbodr4UwG7NHtudg=="
	for _, tc := range []struct {
		name, file, want string
	}{
		{"plain text", "device-1:secret\n", "passwd:1: account device-1: the password is not hashed"},
		{"unknown hash", "device-1:$5$abc$def\n", "hash type $5$ is not supported"},
		{"no colon", "# accounts\ndevice-1\n", "passwd:2: want NAME:HASH"},
		{"name with a wildcard", "device+1:" + good + "\n", "passwd:1: account name:"},
		{"twice", "device-1:" + good + "\ndevice-1:" + good + "\n", "passwd:2: account device-1 is listed twice"},
		{"short hash", "device-1:$7$101$FL6ZIayCz/iIbbNQ$P3wh\n", "the hash is not 64 bytes of base64"},
		{"bad iterations", "device-1:$7$0$FL6ZIayCz/iIbbNQ$P3wh\n", "iterations \"0\""},
		{"bad bcrypt", "device-1:$2y$xx\n", "bcrypt hash"},
		{"slow bcrypt", "device-1:$2y$20$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY\n", "bcrypt cost 20 is above 14"},
		{"slow pbkdf2", "device-1:$7$2000000$FL6ZIayCz/iIbbNQ$P3wh\n", "iterations \"2000000\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePasswords("passwd", []byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParsePasswords(t *testing.T) {
	good := "$7$101$FL6ZIayCz/iIbbNQ$P3wh/0SEZOgxW+Wyb5nV86gVjBB8EEzvTeMdD5nFaV+aZOz+e+/5oPFyn/EgXw9JotnZOyKbodr4UwG7NHtudg=="
	accounts, err := parsePasswords("passwd", []byte("# comment\n\ndevice-1:"+good+"\r\ngitfleet-server:"+good+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(accounts), 2; got != want {
		t.Fatalf("got %d accounts, want %d", got, want)
	}
	if !accounts["device-1"].verify([]byte("secret")) {
		t.Error("device-1's password does not verify")
	}
}

// FuzzParsePasswords checks that no password file makes the parser panic,
// and that every account it accepts has a name that can be a topic level.
func FuzzParsePasswords(f *testing.F) {
	good := "$7$101$FL6ZIayCz/iIbbNQ$P3wh/0SEZOgxW+Wyb5nV86gVjBB8EEzvTeMdD5nFaV+aZOz+e+/5oPFyn/EgXw9JotnZOyKbodr4UwG7NHtudg=="
	f.Add([]byte("# accounts\ndevice-1:" + good + "\n"))
	f.Add([]byte("device-1:$6$MDEyMzQ1Njc4OWFi$AAAA\n"))
	f.Add([]byte("device-1:$2y$10$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY\r\n"))
	f.Add([]byte("a:b:c\n:\n\n#\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		accounts, err := parsePasswords("passwd", data)
		if err != nil {
			return
		}
		for name, h := range accounts {
			if strings.ContainsAny(name, "/+#") || name == "" {
				t.Errorf("accepted account %q, which cannot be a topic level", name)
			}
			h.verify([]byte("x"))
		}
	})
}
