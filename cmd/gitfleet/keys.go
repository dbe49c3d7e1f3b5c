package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gitfleet/gitfleet/firmware/keys"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Generate signing keys"}
	var (
		role, alg, dir string
		encrypt        bool
	)
	gen := &cobra.Command{
		Use:   "generate --role ROLE",
		Short: "Generate a key pair: ROLE.key (private, 0600) and ROLE.pub",
		Long: `Generate a key pair for a TUF role (root, targets, snapshot, timestamp) or any name.
With --encrypt the private key is encrypted with the passphrase in $` + keys.PassphraseEnv + `.
Existing files are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := keys.ParseAlgorithm(alg)
			if err != nil {
				return err
			}
			if role == "" {
				return fmt.Errorf("--role is required (e.g. root, targets, snapshot, timestamp)")
			}
			var pass keys.PassphraseFunc
			if encrypt {
				pass = keys.EnvPassphrase
			}
			p, err := keys.Generate(a, pass)
			if err != nil {
				return err
			}
			priv, pub, err := p.WriteFiles(dir, role)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key id %s\nprivate %s\npublic  %s\n", p.ID, priv, pub)
			return nil
		},
	}
	gen.Flags().StringVar(&role, "role", "", "role or name of the key; names the files")
	gen.Flags().StringVar(&alg, "algorithm", string(keys.Ed25519), "ed25519 or ecdsa-p256")
	gen.Flags().StringVar(&dir, "out", ".", "directory to write the key files to")
	gen.Flags().BoolVar(&encrypt, "encrypt", false, "encrypt the private key with $"+keys.PassphraseEnv)
	cmd.AddCommand(gen)
	return cmd
}
