package main

import (
	"crypto"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitfleet/gitfleet/firmware/keys"
	"github.com/gitfleet/gitfleet/firmware/trust"
)

// rootFlags are the flags that describe a root, shared by init and rotate.
type rootFlags struct {
	pubs       map[string]*[]string
	thresholds map[string]*int
	signKeys   []string
	expires    time.Duration
	out        string
}

func (f *rootFlags) register(cmd *cobra.Command) {
	f.pubs, f.thresholds = map[string]*[]string{}, map[string]*int{}
	for _, role := range []string{trust.RoleRoot, trust.RoleTargets, trust.RoleSnapshot, trust.RoleTimestamp} {
		f.pubs[role] = new([]string)
		f.thresholds[role] = new(int)
		cmd.Flags().StringArrayVar(f.pubs[role], role+"-pub", nil, "public key file of the "+role+" role (repeat for several)")
		cmd.Flags().IntVar(f.thresholds[role], role+"-threshold", 1, "signatures the "+role+" role needs")
	}
	cmd.Flags().StringArrayVar(&f.signKeys, "sign-key", nil, "private key that signs the root: file, env://VAR or KMS URI (repeat)")
	cmd.Flags().DurationVar(&f.expires, "expires", 365*24*time.Hour, "how long the root is valid")
	cmd.Flags().StringVar(&f.out, "out", "root.json", "file to write the root to")
}

func (f *rootFlags) spec() (trust.RootSpec, error) {
	spec := trust.RootSpec{Expires: time.Now().Add(f.expires), Roles: map[string]trust.RoleKeys{}}
	for role, paths := range f.pubs {
		if len(*paths) == 0 {
			return spec, fmt.Errorf("--%s-pub: the %s role needs at least one public key", role, role)
		}
		var pubs []crypto.PublicKey
		for _, p := range *paths {
			pub, err := keys.LoadPublic(p)
			if err != nil {
				return spec, fmt.Errorf("--%s-pub: %w", role, err)
			}
			pubs = append(pubs, pub)
		}
		spec.Roles[role] = trust.RoleKeys{Keys: pubs, Threshold: *f.thresholds[role]}
	}
	return spec, nil
}

func (f *rootFlags) signers(cmd *cobra.Command) ([]*keys.Signer, error) {
	if len(f.signKeys) == 0 {
		return nil, fmt.Errorf("--sign-key: give the root private keys that sign")
	}
	var ss []*keys.Signer
	for _, ref := range f.signKeys {
		s, err := keys.LoadSigner(cmd.Context(), ref, nil)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

func newTrustCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "trust", Short: "Create and rotate TUF trust roots"}

	var initFlags rootFlags
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the first root (version 1) of a trust chain",
		Long: `Create root.json, version 1: the keys and thresholds of the root, targets (release),
snapshot and timestamp roles, signed by a threshold of the root keys. Devices pin this file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := initFlags.spec()
			if err != nil {
				return err
			}
			signers, err := initFlags.signers(cmd)
			if err != nil {
				return err
			}
			data, err := trust.NewRoot(spec, signers...)
			if err != nil {
				return err
			}
			return writeRoot(cmd, initFlags.out, data)
		},
	}
	initFlags.register(initCmd)

	var rotFlags rootFlags
	var prev string
	rotCmd := &cobra.Command{
		Use:   "rotate --prev root.json",
		Short: "Make the next root version with new keys",
		Long: `Make the root that follows --prev. It must be signed (--sign-key) by a threshold of the
previous root keys and a threshold of the new ones; devices follow the chain without re-provisioning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			old, err := os.ReadFile(prev)
			if err != nil {
				return fmt.Errorf("--prev: %w", err)
			}
			spec, err := rotFlags.spec()
			if err != nil {
				return err
			}
			signers, err := rotFlags.signers(cmd)
			if err != nil {
				return err
			}
			data, err := trust.Rotate(old, spec, signers...)
			if err != nil {
				return err
			}
			return writeRoot(cmd, rotFlags.out, data)
		},
	}
	rotFlags.register(rotCmd)
	rotCmd.Flags().StringVar(&prev, "prev", "", "the current root")
	cmd.AddCommand(initCmd, rotCmd)
	return cmd
}

func writeRoot(cmd *cobra.Command, path string, data []byte) error {
	root, err := trust.LoadRoot(data)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: root version %d, expires %s\n", path, root.Version(), root.Expires().Format(time.RFC3339))
	return nil
}
