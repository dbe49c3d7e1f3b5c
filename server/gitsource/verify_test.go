package gitsource

import (
	"errors"
	"strings"
	"testing"
)

// tagsByName polls r from nothing and returns the tags it found by name.
func tagsByName(t *testing.T, r *Repo) map[string]Tag {
	t.Helper()
	ch, _, err := r.Poll(testContext(t), State{})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]Tag)
	for _, tag := range ch.New {
		out[tag.Name] = tag
	}
	return out
}

// tamper pushes a copy of the annotated tag from, its name and message
// changed and its signature kept, as the tag to.
func (w *workspace) tamper(from, to string) {
	w.t.Helper()
	raw := w.run(w.work, "cat-file", "tag", from) + "\n"
	raw = strings.Replace(raw, "\ntag "+from+"\n", "\ntag "+to+"\n", 1)
	raw = strings.Replace(raw, "release "+from, "release "+from+" with a backdoor", 1)
	w.run(w.work, "update-ref", "refs/tags/"+to, w.runStdin(raw, "hash-object", "-t", "tag", "-w", "--stdin"))
	w.run(w.work, "push", "-q", "--force", "origin", "refs/tags/"+to)
}

// renamed pushes the tag object of from, untouched, as the tag to.
func (w *workspace) renamed(from, to string) {
	w.t.Helper()
	w.run(w.work, "update-ref", "refs/tags/"+to, w.run(w.work, "rev-parse", "refs/tags/"+from))
	w.run(w.work, "push", "-q", "--force", "origin", "refs/tags/"+to)
}

// signedTags gives w a commit and the tags every policy test checks:
// v1.0.0 signed by a listed key, v1.1.0 by an unlisted one, v1.2.0
// unsigned, v1.3.0 lightweight, v1.4.0 signed with the other method, v1.5.0
// a tampered copy of v1.0.0, and v2.0.0 the tag object of v1.0.0 under
// another name.
func (w *workspace) signedTags(listed, unlisted, otherMethod func(name string)) {
	w.t.Helper()
	w.seed()
	listed("v1.0.0")
	unlisted("v1.1.0")
	w.tag("v1.2.0", "-a", "-m", "unsigned")
	w.tag("v1.3.0")
	otherMethod("v1.4.0")
	w.tamper("v1.0.0", "v1.5.0")
	w.renamed("v1.0.0", "v2.0.0")
}

type verifyCase struct {
	tag     string
	want    error  // nil: accepted
	signer  Signer // when accepted
	message string // when refused
}

func checkVerify(t *testing.T, r *Repo, tests []verifyCase) {
	t.Helper()
	tags := tagsByName(t, r)
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			tag, ok := tags[tt.tag]
			if !ok {
				t.Fatalf("no tag %s", tt.tag)
			}
			got, err := r.Verify(tag)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got != tt.signer {
					t.Errorf("Verify: signer %+v, want %+v", got, tt.signer)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Verify error %q, want it to say %q", err, tt.message)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

func TestVerifyOpenPGP(t *testing.T) {
	release := newGPGKey(t, "Release Bot <release@example.com>")
	other := newGPGKey(t, "Mallory <mallory@example.com>")
	ssh := newSSHKey(t, "release@example.com")
	w := newWorkspace(t)
	w.signedTags(
		func(name string) { w.signTagGPG(name, release) },
		func(name string) { w.signTagGPG(name, other) },
		func(name string) { w.signTagSSH(name, ssh) })

	// Both keys' block in the keyring, the second one unrelated to the tags,
	// as a file of several exported keys has them.
	unrelated := newGPGKey(t, "Unrelated <u@example.com>")
	policy, err := OpenPGPPolicy(append(append([]byte(nil), release.armored...), unrelated.armored...))
	if err != nil {
		t.Fatal(err)
	}
	r := w.open(w.fileURL(), func(c *Config) { c.Policy = policy })
	checkVerify(t, r, []verifyCase{
		{tag: "v1.0.0", signer: Signer{Method: MethodOpenPGP, Fingerprint: release.fingerprint, Identity: "Release Bot <release@example.com>"}},
		{tag: "v1.1.0", want: ErrUntrusted, message: "verify tag v1.1.0: tag signature is not trusted: openpgp: signature made by unknown entity"},
		{tag: "v1.2.0", want: ErrUnsigned, message: "verify tag v1.2.0: tag is not signed"},
		{tag: "v1.3.0", want: ErrUnsigned, message: "a lightweight tag cannot carry a signature"},
		{tag: "v1.4.0", want: ErrUntrusted, message: "signed with ssh, the policy wants openpgp"},
		{tag: "v1.5.0", want: ErrUntrusted, message: "tag signature is not trusted: openpgp: invalid signature"},
		{tag: "v2.0.0", want: ErrUntrusted, message: `the tag object is named "v1.0.0"`},
	})
	if got := (Signer{Method: MethodOpenPGP, Fingerprint: "AB", Identity: "R <r@x>"}).String(); got != "openpgp AB (R <r@x>)" {
		t.Errorf("Signer.String() = %q", got)
	}
}

func TestVerifySSH(t *testing.T) {
	release := newSSHKey(t, "ci@example.com")
	other := newSSHKey(t, "mallory@example.com")
	gpg := newGPGKey(t, "Release Bot <release@example.com>")
	w := newWorkspace(t)
	w.signedTags(
		func(name string) { w.signTagSSH(name, release) },
		func(name string) { w.signTagSSH(name, other) },
		func(name string) { w.signTagGPG(name, gpg) })

	allowed := "# who may sign releases\n" +
		`release@example.com,ci@example.com namespaces="git,file" ` + release.public + "\n" +
		newSSHKey(t, "bare-key@example.com").public + "\n"
	policy, err := SSHPolicy([]byte(allowed))
	if err != nil {
		t.Fatal(err)
	}
	r := w.open(w.fileURL(), func(c *Config) { c.Policy = policy })
	checkVerify(t, r, []verifyCase{
		{tag: "v1.0.0", signer: Signer{Method: MethodSSH, Fingerprint: release.fingerprint, Identity: "release@example.com,ci@example.com"}},
		{tag: "v1.1.0", want: ErrUntrusted, message: "signed by " + other.fingerprint + ", which is not an allowed signer"},
		{tag: "v1.2.0", want: ErrUnsigned, message: "verify tag v1.2.0: tag is not signed"},
		{tag: "v1.3.0", want: ErrUnsigned, message: "a lightweight tag cannot carry a signature"},
		{tag: "v1.4.0", want: ErrUntrusted, message: "signed with openpgp, the policy wants ssh"},
		{tag: "v1.5.0", want: ErrUntrusted, message: "tag signature is not trusted: ssh: signature did not verify"},
		{tag: "v2.0.0", want: ErrUntrusted, message: `the tag object is named "v1.0.0"`},
	})

	// A bare public key is its own allowed signers line, named by its
	// comment.
	policy, err = SSHPolicy([]byte(other.public + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r = w.open(w.fileURL(), func(c *Config) { c.Policy = policy })
	checkVerify(t, r, []verifyCase{
		{tag: "v1.1.0", signer: Signer{Method: MethodSSH, Fingerprint: other.fingerprint, Identity: "mallory@example.com"}},
		{tag: "v1.0.0", want: ErrUntrusted, message: "not an allowed signer"},
	})
}

func TestVerifyWithoutPolicy(t *testing.T) {
	w := newWorkspace(t)
	w.seed()
	w.tag("v1.0.0")
	w.tag("v1.1.0", "-a", "-m", "unsigned")
	w.signTagSSH("v1.2.0", newSSHKey(t, "x"))
	r := w.open(w.fileURL(), nil)
	checkVerify(t, r, []verifyCase{{tag: "v1.0.0"}, {tag: "v1.1.0"}, {tag: "v1.2.0"}})

	// A tag of a tree cannot be built, policy or not.
	tree := w.run(w.work, "rev-parse", "HEAD^{tree}")
	w.run(w.work, "tag", "-a", "-m", "a tree", "v3.0.0", tree)
	w.run(w.work, "push", "-q", "origin", "refs/tags/v3.0.0")
	tag := tagsByName(t, r)["v3.0.0"]
	if _, err := r.Verify(tag); err == nil || tag.Commit != "" {
		t.Errorf("Verify(tag of a tree %+v) = %v, want an error", tag, err)
	}
}

func TestParsePolicy(t *testing.T) {
	key := newSSHKey(t, "k")
	tests := []struct {
		name, method, keys string
		want               string // error; "" for success
	}{
		{"off", "off", "", ""},
		{"empty", "", "", ""},
		{"off with keys", "off", key.public, "signature policy off: keys given; set the method to openpgp or ssh"},
		{"unknown", "x509", "", `signature policy "x509": want off, openpgp or ssh`},
		{"ssh", "ssh", "a@b " + key.public, ""},
		{"ssh empty", "ssh", "# nobody\n", "ssh allowed signers: no keys"},
		{"ssh garbage", "ssh", "a@b not-a-key", "ssh allowed signers line 1: public key: ssh: no key found"},
		{"ssh principal only", "ssh", "a@b", "ssh allowed signers line 1: want principals and a public key"},
		{"ssh other namespace", "ssh", `a@b namespaces="file" ` + key.public, `ssh allowed signers line 1: namespaces "file": want "git" among them`},
		{"ssh cert authority", "ssh", "a@b cert-authority " + key.public, "ssh allowed signers line 1: option cert-authority is not supported"},
		{"ssh valid-before", "ssh", `a@b valid-before="20300101" ` + key.public, "ssh allowed signers line 1: option valid-before is not supported"},
		{"openpgp empty", "openpgp", "", "openpgp keyring: no keys"},
		{"openpgp not armored", "openpgp", "junk", "openpgp keyring: no armored public key block"},
		{"openpgp unterminated", "openpgp", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n", "openpgp keyring: unterminated public key block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(tt.method, []byte(tt.keys))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ParsePolicy: %v", err)
			case tt.want == "" && (p == nil) != (tt.method == "off" || tt.method == ""):
				t.Errorf("ParsePolicy(%q) = %v", tt.method, p)
			case tt.want != "" && errString(err) != tt.want:
				t.Errorf("ParsePolicy error\n got: %s\nwant: %s", errString(err), tt.want)
			}
		})
	}
}
