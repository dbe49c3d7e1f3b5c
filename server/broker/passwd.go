package broker

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gitfleet/gitfleet/proto/topic"
)

// Parameters of the hashes HashPassword makes: those of mosquitto_passwd
// 2.0, so that its files and ours are interchangeable.
const (
	pbkdf2Iterations = 101
	pbkdf2SaltLen    = 12
	pbkdf2KeyLen     = sha512.Size
)

// Limits on the work one password check takes, so that a password file
// cannot make each connection cost seconds of CPU.
const (
	maxIterations = 1_000_000
	maxBcryptCost = 14
)

// HashPassword returns the password-file hash of password in the format
// mosquitto_passwd 2.0 writes ("$7$": PBKDF2-HMAC-SHA512, 101 iterations,
// a 12-byte random salt), for a line "NAME:HASH" of a password file that
// both the embedded broker and Mosquitto read.
//
// The iteration count is low because a device's password must be a random
// secret of at least 128 bits (openssl rand -hex 16), which no number of
// iterations makes easier or harder to guess from a stolen file; a slow hash
// would only make a reconnect storm of a whole fleet cost minutes of CPU.
func HashPassword(password string) (string, error) {
	salt := make([]byte, pbkdf2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, pbkdf2Iterations, pbkdf2KeyLen)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return fmt.Sprintf("$7$%d$%s$%s", pbkdf2Iterations, base64.StdEncoding.EncodeToString(salt),
		base64.StdEncoding.EncodeToString(key)), nil
}

// A hash is one account's password hash from a password file.
type hash interface {
	verify(password []byte) bool
}

// parseHash reads the hash part of a password-file line.
func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$7$"):
		return parsePBKDF2(s)
	case strings.HasPrefix(s, "$6$"):
		return parseSHA512(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("bcrypt hash: %w", err)
		}
		if cost > maxBcryptCost {
			return nil, fmt.Errorf("bcrypt cost %d is above %d: every connection would take seconds of CPU", cost, maxBcryptCost)
		}
		return bcryptHash(s), nil
	case !strings.HasPrefix(s, "$"):
		return nil, errors.New("the password is not hashed: hash it with mosquitto_passwd or htpasswd -B")
	}
	kind, _, _ := strings.Cut(s[1:], "$")
	return nil, fmt.Errorf("hash type $%s$ is not supported: want $7$ (mosquitto_passwd), $6$ or bcrypt", kind)
}

// pbkdf2Hash is mosquitto_passwd 2.0's "$7$ITERATIONS$SALT$KEY":
// PBKDF2-HMAC-SHA512, salt and key in standard base64.
type pbkdf2Hash struct {
	iterations int
	salt, key  []byte
}

func parsePBKDF2(s string) (hash, error) {
	parts := strings.Split(s, "$") // "", "7", iterations, salt, key
	if len(parts) != 5 {
		return nil, errors.New("$7$ hash: want $7$ITERATIONS$SALT$HASH")
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 1 || n > maxIterations {
		return nil, fmt.Errorf("$7$ hash: iterations %q is not a number from 1 to %d", parts[2], maxIterations)
	}
	salt, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(salt) == 0 {
		return nil, errors.New("$7$ hash: the salt is not base64")
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != pbkdf2KeyLen {
		return nil, fmt.Errorf("$7$ hash: the hash is not %d bytes of base64", pbkdf2KeyLen)
	}
	return pbkdf2Hash{iterations: n, salt: salt, key: key}, nil
}

func (h pbkdf2Hash) verify(password []byte) bool {
	key, err := pbkdf2.Key(sha512.New, string(password), h.salt, h.iterations, len(h.key))
	return err == nil && subtle.ConstantTimeCompare(key, h.key) == 1
}

// sha512Hash is mosquitto_passwd 1.x's "$6$SALT$HASH": SHA-512 of the
// password followed by the salt, both in standard base64.
type sha512Hash struct {
	salt, sum []byte
}

func parseSHA512(s string) (hash, error) {
	parts := strings.Split(s, "$") // "", "6", salt, sum
	if len(parts) != 4 {
		return nil, errors.New("$6$ hash: want $6$SALT$HASH")
	}
	salt, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(salt) == 0 {
		return nil, errors.New("$6$ hash: the salt is not base64")
	}
	sum, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(sum) != sha512.Size {
		return nil, fmt.Errorf("$6$ hash: the hash is not %d bytes of base64", sha512.Size)
	}
	return sha512Hash{salt: salt, sum: sum}, nil
}

func (h sha512Hash) verify(password []byte) bool {
	d := sha512.New()
	d.Write(password)
	d.Write(h.salt)
	return subtle.ConstantTimeCompare(d.Sum(nil), h.sum) == 1
}

// bcryptHash is a bcrypt hash, as htpasswd -B writes it.
type bcryptHash string

func (h bcryptHash) verify(password []byte) bool {
	return bcrypt.CompareHashAndPassword([]byte(h), password) == nil
}

// parsePasswords reads a password file: one "NAME:HASH" line per account,
// blank lines and lines starting with '#' ignored. Every name is an ID
// (topic.CheckID), since a device's name is the device level of its topics.
func parsePasswords(name string, data []byte) (map[string]hash, error) {
	accounts := map[string]hash{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, h, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want NAME:HASH", name, n)
		}
		if err := topic.CheckID(user); err != nil {
			return nil, fmt.Errorf("%s:%d: account name: %w", name, n, err)
		}
		if _, dup := accounts[user]; dup {
			return nil, fmt.Errorf("%s:%d: account %s is listed twice", name, n, user)
		}
		parsed, err := parseHash(h)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: account %s: %w", name, n, user, err)
		}
		accounts[user] = parsed
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return accounts, nil
}

// passwordFile is a password file that is read again when it changes, so
// that provisioning a device needs no restart.
type passwordFile struct {
	path string
	// every is how often, at most, the file's size and time are looked at.
	every time.Duration

	mu       sync.Mutex
	accounts map[string]hash
	size     int64
	modTime  time.Time
	checked  time.Time
}

// loadPasswordFile reads the password file at path.
func loadPasswordFile(path string) (*passwordFile, error) {
	f := &passwordFile{path: path, every: time.Second}
	if err := f.reload(time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads the file again if its size or modification time changed.
// It keeps the accounts it has if the file no longer parses.
func (f *passwordFile) reload(now time.Time) error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("read password file: %w", err)
	}
	f.checked = now
	if f.accounts != nil && fi.Size() == f.size && fi.ModTime().Equal(f.modTime) {
		return nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("read password file: %w", err)
	}
	accounts, err := parsePasswords(f.path, data)
	if err != nil {
		return err
	}
	f.accounts, f.size, f.modTime = accounts, fi.Size(), fi.ModTime()
	return nil
}

// account returns the hash of user's password, reading the file again first
// if it may have changed. A file that changed into something unreadable
// leaves the accounts as they were, and the error says why.
func (f *passwordFile) account(user string) (hash, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if now := time.Now(); now.Sub(f.checked) >= f.every {
		err = f.reload(now)
	}
	h, ok := f.accounts[user]
	return h, ok, err
}
