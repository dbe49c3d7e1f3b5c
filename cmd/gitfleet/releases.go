package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

func newReleasesCommand() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List the server's releases, newest first",
		Long:  "List every release the server knows, newest first: built ones, builds in progress and failed builds.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			rs, err := c.Releases(cmd.Context())
			if err != nil {
				return c.check(err)
			}
			if r.json() {
				return writeJSON(cmd.OutOrStdout(), apiclient.ReleaseList{Releases: rs})
			}
			rows := [][]string{{"VERSION", "TAG", "BUILD", "COMMIT", "SIGNER", "CREATED"}}
			for _, rel := range rs {
				rows = append(rows, []string{orDash(rel.Version), rel.Provenance.Tag, rel.Build.State,
					short(rel.Provenance.Commit), orDash(rel.Provenance.Signer), when(rel.Build.Created)})
			}
			return table(cmd.OutOrStdout(), rows)
		},
	}
	r.register(cmd)
	return cmd
}

func newReleaseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "Show a release"}
	var r remote
	show := &cobra.Command{
		Use:   "show VERSION",
		Short: "Show a release and its provenance",
		Long:  "Show a release: its signed tag, commit and signer, its bundle and its build. VERSION is a built release's (1.4.0) or a tag (v1.4.0), which finds a release whatever its build state.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			rel, err := c.Release(cmd.Context(), args[0])
			if err != nil {
				return c.check(err)
			}
			if r.json() {
				return writeJSON(cmd.OutOrStdout(), rel)
			}
			return table(cmd.OutOrStdout(), releaseRows(rel))
		},
	}
	r.register(show)
	cmd.AddCommand(show)
	return cmd
}

func releaseRows(rel apiclient.Release) [][]string {
	build := rel.Build.State + ", claimed " + when(rel.Build.Created)
	if rel.Build.Finished != nil {
		build += ", finished " + when(*rel.Build.Finished)
	}
	rows := [][]string{
		{"Version:", orDash(rel.Version)},
		{"Tag:", rel.Provenance.Tag},
		{"Tag object:", orDash(rel.Provenance.TagObject)},
		{"Commit:", orDash(rel.Provenance.Commit)},
		{"Signer:", orDash(rel.Provenance.Signer)},
		{"Product:", orDash(rel.Product)},
		{"Device types:", orDash(strings.Join(rel.DeviceTypes, ", "))},
		{"Counter:", fmt.Sprint(rel.Counter)},
		{"Bundle:", orDash(rel.Bundle.Digest)},
		{"Bundle size:", fmt.Sprintf("%d bytes (%.1f MiB)", rel.Bundle.Size, float64(rel.Bundle.Size)/(1<<20))},
		{"Build:", build},
	}
	if rel.Build.Error != "" {
		rows = append(rows, []string{"Build error:", oneLine(rel.Build.Error)})
	}
	if rel.Build.Log != "" {
		rows = append(rows, []string{"Build log:", rel.Build.Log})
	}
	kinds := make([]string, 0, len(rel.Objects))
	for k := range rel.Objects {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		rows = append(rows, []string{"Object " + k + ":", rel.Objects[k]})
	}
	return rows
}

func newPromoteCommand() *cobra.Command {
	var (
		r       remote
		channel string
	)
	cmd := &cobra.Command{
		Use:   "promote VERSION --channel CHANNEL",
		Short: "Promote a built release to a channel",
		Long: `Promote a built release to a channel: the server commits the release to the channel in
fleet.yaml and pushes it, and the rollout starts when the server reads the commit back.
"git revert" of the commit is the rollback. Needs a token with scope release.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if channel == "" {
				return fmt.Errorf("--channel: name the channel to promote %s to", args[0])
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			p, err := c.Promote(cmd.Context(), channel, args[0])
			if err != nil {
				return c.check(err)
			}
			if r.json() {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "promoted %s to %s: commit %s\n", p.Version, p.Channel, p.Commit)
			return err
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "the channel to promote to (required)")
	r.register(cmd)
	return cmd
}
