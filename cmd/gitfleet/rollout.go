package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

func newRolloutCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Show, pause, resume and abort channels' rollouts"}
	cmd.AddCommand(newRolloutStatus())
	for _, a := range []struct {
		name, short, long string
		do                action
	}{
		{"pause", "Pause a channel's rollout", "Pause a channel's rollout: devices do not start the update until it resumes.",
			(*apiclient.Client).Pause},
		{"resume", "Resume a channel's rollout", "Resume a channel's rollout after a pause, a halt or an abort.",
			(*apiclient.Client).Resume},
		{"abort", "Abort a channel's rollout", "Abort a channel's rollout: devices that have not installed the release do not; the others keep it.",
			(*apiclient.Client).Abort},
	} {
		cmd.AddCommand(newRolloutAction(a.name, a.short, a.long, a.do))
	}
	return cmd
}

func newRolloutStatus() *cobra.Command {
	var (
		r       remote
		channel string
	)
	cmd := &cobra.Command{
		Use:   "status [--channel CHANNEL]",
		Short: "Show channels' rollouts",
		Long:  "Show one channel's rollout with its conditions and device counts, or with no --channel a line for every channel.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if channel != "" {
				ch, err := c.Channel(cmd.Context(), channel)
				if err != nil {
					return c.check(err)
				}
				if r.json() {
					return writeJSON(w, ch)
				}
				return writeChannel(w, ch)
			}
			cs, err := c.Channels(cmd.Context())
			if err != nil {
				return c.check(err)
			}
			if r.json() {
				return writeJSON(w, apiclient.ChannelList{Channels: cs})
			}
			rows := [][]string{{"CHANNEL", "RELEASE", "WAVE", "STATE", "UPDATED", "REASON"}}
			for _, ch := range cs {
				rows = append(rows, []string{ch.Name, orDash(ch.Release), fmt.Sprint(ch.Wave), ch.State, when(ch.Updated), oneLine(orDash(ch.Reason))})
			}
			return table(w, rows)
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "the channel to show (default: every channel)")
	r.register(cmd)
	return cmd
}

// writeChannel writes one channel's rollout for people.
func writeChannel(w io.Writer, ch apiclient.Channel) error {
	if err := table(w, [][]string{
		{"Channel:", ch.Name},
		{"Release:", orDash(ch.Release)},
		{"Wave:", fmt.Sprintf("%d, since %s", ch.Wave, when(ch.WaveStarted))},
		{"State:", ch.State},
		{"Reason:", oneLine(orDash(ch.Reason))},
		{"Updated:", when(ch.Updated)},
	}); err != nil {
		return err
	}
	if n := ch.Counts; n != nil {
		fmt.Fprintf(w, "Devices:  %d targeted: %d confirmed, %d in progress, %d not started, %d failed (%d penalized); %d offline, %d overridden\n",
			n.Targeted, n.Confirmed, n.InProgress, n.NotStarted, n.Failed, n.Penalized, n.Offline, n.Overridden)
	}
	if len(ch.Conditions) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	rows := [][]string{{"CONDITION", "STATUS", "REASON", "MESSAGE"}}
	for _, c := range ch.Conditions {
		rows = append(rows, []string{c.Type, fmt.Sprint(c.Status), orDash(c.Reason), oneLine(c.Message)})
	}
	return table(w, rows)
}

// action is an operator's command on a channel's rollout: a method of
// apiclient.Client.
type action func(c *apiclient.Client, ctx context.Context, channel, reason string) (apiclient.Channel, error)

func newRolloutAction(name, short, long string, do action) *cobra.Command {
	var (
		r               remote
		channel, reason string
	)
	cmd := &cobra.Command{
		Use:   name + " --channel CHANNEL [--reason REASON]",
		Short: short,
		Long:  long + " The reason recorded names the token. Needs a token with scope admin.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if channel == "" {
				return errors.New("--channel: name the channel whose rollout to " + name)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			ch, err := do(c.Client, cmd.Context(), channel, reason)
			if err != nil {
				return c.check(err)
			}
			if r.json() {
				return writeJSON(cmd.OutOrStdout(), ch)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s at wave %d of %s: %s\n", ch.Name, ch.State, ch.Wave, orDash(ch.Release), oneLine(ch.Reason))
			return err
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "the channel (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the people who read the rollout's state")
	r.register(cmd)
	return cmd
}
