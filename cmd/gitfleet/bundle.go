package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitfleet/gitfleet/firmware/bundle"
	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
	"github.com/gitfleet/gitfleet/internal/pipes"
	"github.com/gitfleet/gitfleet/internal/progress"
)

func newBundleCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bundle", Short: "Create, verify and inspect firmware bundles"}
	cmd.AddCommand(newBundleCreate(), newBundleVerify(), newBundleInspect())
	return cmd
}

func newBundleCreate() *cobra.Command {
	var (
		out, objects, version string
		rel                   bundle.Release
		prov                  bundle.Provenance
		images, keyRefs       []string
		chunkSize             int64
	)
	cmd := &cobra.Command{
		Use:   "create -o FILE --image NAME=PATH ... --key KEY",
		Short: "Create a signed bundle from images",
		Long: `Create a signed single-file bundle. Each --image is NAME=PATH or NAME=PATH,slot=SLOT
(the slot defaults to the name). --key signs with a targets key: a PEM file (encrypted keys read
their passphrase from $` + keys.PassphraseEnv + `), env://VAR, or a KMS URI; repeat it to meet a
threshold. With --objects DIR the bundle is also written in the object-storage layout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if out == "" {
				return errors.New("--output-file (-f) is required")
			}
			rel.Version = strings.TrimPrefix(version, "v")
			if prov != (bundle.Provenance{}) {
				rel.Provenance = &prov
			}
			rel.ChunkSize = chunkSize
			files, err := parseImages(images)
			if err != nil {
				return err
			}
			if len(keyRefs) == 0 {
				return errors.New("--key: give the targets key that signs the bundle")
			}
			var sealer trust.Sealer
			for _, ref := range keyRefs {
				s, err := keys.LoadSigner(ctx, ref, nil)
				if err != nil {
					return err
				}
				sealer = append(sealer, s)
			}
			m, err := createFile(ctx, out, rel, files, sealer, progress.New(cmd.ErrOrStderr(), "hash"))
			if err != nil {
				return err
			}
			d, _ := m.Digest()
			if objects != "" {
				if err := explodeFile(ctx, out, objects, sealer); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s %s, counter %d, bundle sha256:%s\n", out, m.Product, m.Version, m.Counter, d)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output-file", "f", "", "bundle file to write")
	f.StringVar(&objects, "objects", "", "also write the object-storage layout into this directory")
	f.StringVar(&rel.Product, "product", "", "product name")
	f.StringVar(&version, "version", "", "release version (semver, e.g. 1.4.0)")
	f.Uint64Var(&rel.Counter, "counter", 0, "release counter for anti-rollback (monotonic)")
	f.StringArrayVar(&rel.DeviceTypes, "device-type", nil, "compatible device type (repeat)")
	f.StringArrayVar(&images, "image", nil, "NAME=PATH[,slot=SLOT] (repeat)")
	f.StringArrayVar(&keyRefs, "key", nil, "signing key: file, env://VAR or KMS URI (repeat)")
	f.Int64Var(&chunkSize, "chunk-size", bundle.DefaultChunk, "chunk size in bytes, a power of two")
	f.StringVar(&prov.Repository, "repository", "", "provenance: Git repository URL")
	f.StringVar(&prov.Tag, "tag", "", "provenance: Git tag")
	f.StringVar(&prov.TagObject, "tag-object", "", "provenance: annotated tag object id")
	f.StringVar(&prov.Commit, "commit", "", "provenance: commit id")
	f.StringVar(&prov.Signer, "signer", "", "provenance: who signed the tag")
	return cmd
}

// createFile writes the bundle to a temporary file beside path and renames
// it into place, so a failed or interrupted create leaves no partial bundle.
func createFile(ctx context.Context, path string, rel bundle.Release, files []bundle.ImageFile, s bundle.Signer, p *progress.Line) (*bundle.Manifest, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	hashed := false
	m, err := bundle.Create(ctx, tmp, rel, files, s, func(done, total int64) {
		p.Update(done, total)
		if done == total && !hashed {
			// Create reads the images twice: to hash them, then to write them.
			hashed = true
			p.Relabel("write")
		}
	})
	if err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return m, os.Rename(tmp.Name(), path)
}

func explodeFile(ctx context.Context, path, dir string, sealer trust.Sealer) error {
	var pubs []any
	for _, s := range sealer {
		pubs = append(pubs, s.Public)
	}
	v, err := trust.NewVerifier("signing", len(sealer), pubs...)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := bundle.NewReader(ctx, f, v, bundle.Policy{})
	if err != nil {
		return err
	}
	_, err = bundle.Explode(ctx, r, bundle.Dir(dir))
	return err
}

func parseImages(specs []string) ([]bundle.ImageFile, error) {
	if len(specs) == 0 {
		return nil, errors.New("--image: give at least one NAME=PATH")
	}
	var files []bundle.ImageFile
	for _, spec := range specs {
		name, rest, ok := strings.Cut(spec, "=")
		if !ok || name == "" || rest == "" {
			return nil, fmt.Errorf("--image %q: want NAME=PATH or NAME=PATH,slot=SLOT", spec)
		}
		f := bundle.ImageFile{Name: name, Slot: name, Path: rest}
		if path, opt, ok := strings.Cut(rest, ",slot="); ok {
			f.Path, f.Slot = path, opt
		}
		files = append(files, f)
	}
	return files, nil
}

// trustFlags choose whom verify believes: a pinned TUF root (and the root
// updates that lead from it) or public keys.
type trustFlags struct {
	root      string
	updates   []string
	pubs      []string
	threshold int
}

func (t *trustFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.root, "root", "", "trusted TUF root.json; bundles must be signed by its targets role")
	cmd.Flags().StringArrayVar(&t.updates, "root-update", nil, "newer root versions, in order, signed along the chain (repeat)")
	cmd.Flags().StringArrayVar(&t.pubs, "pub", nil, "trusted public key file, instead of --root (repeat)")
	cmd.Flags().IntVar(&t.threshold, "threshold", 1, "with --pub: how many of the keys must sign")
}

func (t *trustFlags) verifier() (*trust.Verifier, error) {
	switch {
	case t.root != "" && len(t.pubs) > 0:
		return nil, errors.New("give --root or --pub, not both")
	case t.root != "":
		pinned, err := os.ReadFile(t.root)
		if err != nil {
			return nil, fmt.Errorf("--root: %w", err)
		}
		var ups [][]byte
		for _, u := range t.updates {
			b, err := os.ReadFile(u)
			if err != nil {
				return nil, fmt.Errorf("--root-update: %w", err)
			}
			ups = append(ups, b)
		}
		root, err := trust.LoadRoot(pinned, ups...)
		if err != nil {
			return nil, err
		}
		return root.Verifier(trust.RoleTargets)
	case len(t.pubs) > 0:
		var pubs []any
		for _, p := range t.pubs {
			pub, err := keys.LoadPublic(p)
			if err != nil {
				return nil, fmt.Errorf("--pub: %w", err)
			}
			pubs = append(pubs, crypto.PublicKey(pub))
		}
		return trust.NewVerifier("--pub", t.threshold, pubs...)
	}
	return nil, errors.New("give --root root.json or --pub KEY.pub: whom to trust")
}

func newBundleVerify() *cobra.Command {
	var (
		tf     trustFlags
		policy bundle.Policy
		o      output
	)
	cmd := &cobra.Command{
		Use:   "verify BUNDLE|-",
		Short: "Verify a bundle's signatures, policy and every chunk of every image",
		Long: `Verify a bundle as a device would before installing it: the manifest's signatures against
--root (or --pub), the device type and release counter, then every chunk of every image.
BUNDLE - reads the bundle as a stream from standard input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			v, err := tf.verifier()
			if err != nil {
				return err
			}
			var src io.Reader = cmd.InOrStdin()
			if args[0] == "-" {
				pipes.Widen(src)
			} else {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src = f
			}
			start := time.Now()
			r, err := bundle.NewReader(cmd.Context(), src, v, policy)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err := r.Verify(progress.New(cmd.ErrOrStderr(), "verify").Update); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			m := r.Manifest()
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{
					"ok": true, "digest": "sha256:" + r.Digest().String(), "manifest": m,
					"seconds": time.Since(start).Seconds(),
				})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK %s: %s %s, counter %d, bundle sha256:%s, %d image(s), %s verified in %.2fs\n",
				args[0], m.Product, m.Version, m.Counter, r.Digest(), len(m.Images), progress.MiB(m.PayloadSize()), time.Since(start).Seconds())
			return nil
		},
	}
	tf.register(cmd)
	cmd.Flags().StringVar(&policy.DeviceType, "device-type", "", "refuse unless the bundle lists this device type")
	cmd.Flags().Uint64Var(&policy.InstalledCounter, "installed-counter", 0, "refuse a release counter lower than this (anti-rollback)")
	o.register(cmd)
	return cmd
}

func newBundleInspect() *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "inspect BUNDLE",
		Short: "Show what a bundle's manifest says (signatures NOT verified: use verify)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			env, err := bundle.ReadEnvelope(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			pt, payload, keyIDs, err := trust.Inspect(env)
			if err != nil {
				return fmt.Errorf("%s: envelope: %w", args[0], err)
			}
			if pt != bundle.PayloadType {
				return fmt.Errorf("%s: payload type %q, want %q", args[0], pt, bundle.PayloadType)
			}
			m, err := bundle.ParseManifest(payload)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			d, _ := m.Digest()
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{
					"verified": false, "digest": "sha256:" + d.String(), "signed_by": keyIDs, "manifest": m,
				})
			}
			return printManifest(cmd.OutOrStdout(), m, d, keyIDs)
		},
	}
	o.register(cmd)
	return cmd
}

func printManifest(w io.Writer, m *bundle.Manifest, d bundle.Digest, keyIDs []string) error {
	rows := [][]string{
		{"product", m.Product},
		{"version", m.Version},
		{"counter", strconv.FormatUint(m.Counter, 10)},
		{"device types", strings.Join(m.DeviceTypes, ", ")},
		{"created", m.Created.Format(time.RFC3339)},
		{"bundle digest", "sha256:" + d.String()},
		{"signed by", strings.Join(keyIDs, ", ") + "  (not verified)"},
	}
	if p := m.Provenance; p != nil {
		for _, r := range [][]string{
			{"repository", p.Repository}, {"tag", p.Tag}, {"tag object", p.TagObject},
			{"commit", p.Commit}, {"tag signer", p.Signer},
		} {
			if r[1] != "" {
				rows = append(rows, r)
			}
		}
	}
	if err := table(w, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	imgs := [][]string{{"IMAGE", "SLOT", "SIZE", "CHUNKS", "SHA256"}}
	for _, im := range m.Images {
		imgs = append(imgs, []string{im.Name, im.Slot, strconv.FormatInt(im.Size, 10),
			fmt.Sprintf("%d x %d", len(im.Chunks), im.ChunkSize), im.SHA256.String()})
	}
	return table(w, imgs)
}
