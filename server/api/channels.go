package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/store"
)

// channels answers GET /api/v1/channels: every channel, by name.
func (s *Server) channels(_ http.ResponseWriter, r *http.Request) (any, error) {
	cs, err := s.cfg.Store.Channels(r.Context())
	if err != nil {
		return nil, err
	}
	out := apiclient.ChannelList{Channels: make([]apiclient.Channel, len(cs))}
	for i, c := range cs {
		if out.Channels[i], err = s.channelOf(r.Context(), c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// channel answers GET /api/v1/channels/{name}.
func (s *Server) channel(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.lookupChannel(r.Context(), r.PathValue("name"))
}

func (s *Server) lookupChannel(ctx context.Context, name string) (apiclient.Channel, error) {
	c, err := s.cfg.Store.Channel(ctx, name)
	if err != nil {
		return apiclient.Channel{}, notFound(err, "channel", name)
	}
	return s.channelOf(ctx, c)
}

// action returns the handler of POST /api/v1/channels/{name}/ACTION: it
// applies the operator's command through the Controller and answers with the
// channel as it is then.
func (s *Server) action(action string) handler {
	past := map[string]string{"pause": "paused", "resume": "resumed", "abort": "aborted"}[action]
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		if s.cfg.Controller == nil {
			return nil, notConfigured("a rollout controller")
		}
		name := r.PathValue("name")
		var body apiclient.Action
		if err := readJSON(w, r, &body); err != nil {
			return nil, err
		}
		if strings.ContainsAny(body.Reason, "\r\n") {
			return nil, badRequest("reason: give one line")
		}
		// The reason names who acted: the store keeps no other record of it.
		reason := fmt.Sprintf("%s by %s", past, infoOf(r).token)
		if body.Reason != "" {
			reason += ": " + body.Reason
		}
		apply := map[string]func(context.Context, string, string) error{
			"pause": s.cfg.Controller.Pause, "resume": s.cfg.Controller.Resume, "abort": s.cfg.Controller.Abort,
		}[action]
		if err := apply(r.Context(), name, reason); err != nil {
			return nil, notFound(fmt.Errorf("%s rollout of channel %s: %w", action, name, err), "channel", name)
		}
		return s.lookupChannel(r.Context(), name)
	}
}

// promote answers POST /api/v1/channels/{name}/promote: it checks that the
// release was built and has the Promoter commit it to fleet.yaml. The
// channel's rollout starts when the server reads that commit back from Git,
// not here: Git is what the fleet follows.
func (s *Server) promote(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.cfg.Promoter == nil {
		return nil, notConfigured("a promoter (a Git repository to commit fleet.yaml to)")
	}
	name := r.PathValue("name")
	var body apiclient.PromoteRequest
	if err := readJSON(w, r, &body); err != nil {
		return nil, err
	}
	version := strings.TrimPrefix(body.Version, "v")
	if version == "" {
		return nil, badRequest(`body: give the version to promote: {"version": "1.4.0"}`)
	}
	if _, err := s.cfg.Store.Release(r.Context(), version); err != nil {
		return nil, notFound(err, "built release", version)
	}
	commit, err := s.cfg.Promoter.Promote(r.Context(), name, version)
	if err != nil {
		return nil, err
	}
	return apiclient.Promotion{Channel: name, Version: version, Commit: commit}, nil
}

// channelOf returns c with the rollout engine's latest evaluation of it, if
// there is a Reporter and it has one.
func (s *Server) channelOf(ctx context.Context, c store.Channel) (apiclient.Channel, error) {
	out := apiclient.Channel{
		Name: c.Name, Release: c.Release, Wave: c.Wave, State: string(c.State), Reason: c.Reason,
		WaveStarted: utc(c.WaveStarted), Updated: utc(c.Updated),
	}
	if s.cfg.Reporter == nil {
		return out, nil
	}
	res, err := s.cfg.Reporter.Report(ctx, c.Name)
	if err != nil {
		return apiclient.Channel{}, fmt.Errorf("report on channel %s: %w", c.Name, err)
	}
	if res == nil {
		return out, nil
	}
	for _, cond := range res.Conditions {
		out.Conditions = append(out.Conditions, apiclient.Condition{
			Type: string(cond.Type), Status: cond.Status, Reason: cond.Reason, Message: cond.Message,
		})
	}
	n := apiclient.Counts(res.Total)
	out.Counts = &n
	return out, nil
}
