package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gitfleet/gitfleet/server/apiclient"
)

func newDevicesCommand() *cobra.Command {
	var (
		r      remote
		all    bool
		limit  int
		labels []string
	)
	// filters are the flags named after the device list's query
	// parameters, which the API parses and checks.
	filters := []struct{ name, usage string }{
		{"fleet", "devices of this fleet"},
		{"channel", "devices following this channel"},
		{"version", "devices running this version (1.4.0)"},
		{"tag", "devices running this tag (v1.4.0)"},
		{"commit", "devices running this commit"},
		{"state", "devices in this update state (idle, downloading, failed ...)"},
		{"health", "ok or failing: devices whose health checks all pass, or not"},
		{"confirmed", "true or false: devices that confirmed booting their release, or not"},
		{"online", "true or false: devices online, or not"},
		{"after", "the cursor a previous page ended with"},
	}
	values := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "devices [--channel C] [--version V] [--tag T] [--commit C] [--state S] [--health ok|failing] [--confirmed true|false] [--online true|false] [--label NAME=VALUE ...]",
		Short: "List devices, filtered",
		Long: `List the devices that match every filter given, in id order, a page at a time: a page that is not
the last ends with the --after cursor of the next (on stderr; "next" in JSON). --all lists every page.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := url.Values{}
			for name, value := range values {
				if cmd.Flags().Changed(name) {
					v.Set(name, *value)
				}
			}
			for _, l := range labels {
				v.Add("label", l)
			}
			if cmd.Flags().Changed("limit") {
				v.Set("limit", strconv.Itoa(limit))
			}
			q, err := apiclient.ParseDeviceQuery(v)
			if err != nil {
				return err
			}
			if all && q.Limit == 0 {
				q.Limit = apiclient.MaxLimit
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			var page apiclient.DevicePage
			for {
				p, err := c.Devices(cmd.Context(), q)
				if err != nil {
					return c.check(err)
				}
				page.Devices = append(page.Devices, p.Devices...)
				page.Next = p.Next
				if !all || p.Next == "" {
					break
				}
				q.After = p.Next
			}
			if r.json() {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			if err := writeDevices(cmd.OutOrStdout(), page.Devices); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more devices: add --after %s\n", page.Next)
			}
			return nil
		},
	}
	for _, f := range filters {
		values[f.name] = cmd.Flags().String(f.name, "", f.usage)
	}
	cmd.Flags().StringArrayVar(&labels, "label", nil, "NAME=VALUE: devices that report this label with this value (repeat for several, all must match)")
	cmd.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("how many devices a page holds at most, 1 to %d (default %d, with --all %d)", apiclient.MaxLimit, apiclient.DefaultLimit, apiclient.MaxLimit))
	cmd.Flags().BoolVar(&all, "all", false, "list every page")
	r.register(cmd)
	return cmd
}

func writeDevices(w io.Writer, ds []apiclient.Device) error {
	rows := [][]string{{"ID", "CHANNEL", "VERSION", "STATE", "CONFIRMED", "HEALTH", "ONLINE", "LAST SEEN"}}
	for _, d := range ds {
		rows = append(rows, []string{d.ID, orDash(d.Channel), orDash(d.Version), state(d), yesNo(d.Confirmed),
			health(d.Health), yesNo(d.Online), when(d.LastSeen)})
	}
	return table(w, rows)
}

// state is a device's update state, with the progress of a download.
func state(d apiclient.Device) string {
	if t := d.Target; t != nil && t.TotalBytes > 0 && d.State == "downloading" {
		return fmt.Sprintf("%s %d%%", d.State, t.DoneBytes*100/t.TotalBytes)
	}
	return orDash(d.State)
}

func health(h apiclient.Health) string {
	if h.OK {
		return "ok"
	}
	return "failing"
}

// deviceView is what device show writes as JSON: the device and its latest
// events.
type deviceView struct {
	Device apiclient.Device  `json:"device"`
	Events []apiclient.Event `json:"events"`
}

func newDeviceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Show a device, or let it out of the penalty box"}
	var (
		r      remote
		events int
	)
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a device's status and its latest events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if events < 0 || events > apiclient.MaxLimit {
				return fmt.Errorf("--events %d: use 0 to %d", events, apiclient.MaxLimit)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			d, err := c.Device(cmd.Context(), args[0])
			if err != nil {
				return c.check(err)
			}
			view := deviceView{Device: d, Events: []apiclient.Event{}}
			if events > 0 {
				p, err := c.Events(cmd.Context(), args[0], apiclient.EventQuery{Limit: events})
				if err != nil {
					return c.check(err)
				}
				view.Events = p.Events
			}
			if r.json() {
				return writeJSON(cmd.OutOrStdout(), view)
			}
			return writeDevice(cmd.OutOrStdout(), view)
		},
	}
	show.Flags().IntVar(&events, "events", 10, "how many of the latest events to show")
	r.register(show)

	var release, reason string
	clear := &cobra.Command{
		Use:   "clear-penalty ID --release VERSION",
		Short: "Forget a device's failures to install a release, so the rollout offers it again",
		Long: "Forget a device's failures to install a release: at the next rollout step the device leaves the\n" +
			"penalty box and is offered the release again. Needs a token with the admin scope.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if release == "" {
				return errors.New("--release: name the release whose failures to forget, e.g. 1.5.0")
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			d, err := c.ClearPenalty(cmd.Context(), args[0], release, reason)
			if err != nil {
				return c.check(err)
			}
			if r.json() {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "device %s: failures to install %s forgotten; the rollout offers it again\n", d.ID, release)
			return err
		},
	}
	clear.Flags().StringVar(&release, "release", "", "the release (version) whose failures to forget")
	clear.Flags().StringVar(&reason, "reason", "", "why, one line (logged with the token's name)")
	r.register(clear)
	cmd.AddCommand(show, clear)
	return cmd
}

// labels writes a device's labels as name=value, sorted by name.
func labels(l map[string]string) string {
	if len(l) == 0 {
		return "-"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		out = append(out, k+"="+l[k])
	}
	return strings.Join(out, ", ")
}

// writeDevice writes a device and its events for people.
func writeDevice(w io.Writer, v deviceView) error {
	d := v.Device
	rows := [][]string{
		{"Device:", d.ID},
		{"Fleet:", orDash(d.Fleet)},
		{"Type:", orDash(d.DeviceType)},
		{"Channel:", orDash(d.Channel)},
		{"Labels:", labels(d.Labels)},
		{"Online:", yesNo(d.Online)},
		{"Version:", orDash(d.Version)},
		{"Tag:", orDash(d.Tag)},
		{"Commit:", orDash(d.Commit)},
		{"Bundle:", orDash(d.BundleDigest)},
		{"Slot:", fmt.Sprintf("booted %s, next boot %s", orDash(d.BootedSlot), orDash(d.ActiveSlot))},
		{"Confirmed:", yesNo(d.Confirmed)},
		{"State:", state(d)},
	}
	if t := d.Target; t != nil {
		rows = append(rows, []string{"Target:", fmt.Sprintf("%s %s, %d of %d bytes", orDash(t.Version), orDash(t.BundleDigest), t.DoneBytes, t.TotalBytes)})
	}
	if e := d.Error; e != nil {
		rows = append(rows, []string{"Error:", oneLine(e.Code + ": " + e.Message)})
	}
	rows = append(rows, []string{"Health:", health(d.Health)})
	for _, c := range d.Health.Checks {
		check := "ok"
		if !c.OK {
			check = "failing"
		}
		if c.Message != "" {
			check += ": " + oneLine(c.Message)
		}
		rows = append(rows, []string{"  " + c.Name + ":", check})
	}
	rows = append(rows,
		[]string{"Agent:", orDash(d.AgentVersion) + ", boot " + orDash(d.BootID)},
		[]string{"Last seen:", when(d.LastSeen) + " (status taken " + when(d.StatusTime) + ")"},
		[]string{"First seen:", when(d.FirstSeen)},
	)
	if err := table(w, rows); err != nil {
		return err
	}
	if len(v.Events) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	events := [][]string{{"TIME", "SEQ", "FROM", "TO", "VERSION", "ERROR"}}
	for _, e := range v.Events {
		msg := "-"
		if e.Error != nil {
			msg = oneLine(e.Error.Code + ": " + e.Error.Message)
		}
		events = append(events, []string{when(e.Time), strconv.FormatUint(e.Sequence, 10), orDash(e.From), orDash(e.To), orDash(e.Version), msg})
	}
	return table(w, events)
}
