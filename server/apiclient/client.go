package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Timeout is how long a Client made with a nil *http.Client waits for an
// answer.
const Timeout = 30 * time.Second

// maxBody bounds what a Client reads of an answer: the largest device page is
// well under it.
const maxBody = 64 << 20

// Client talks to one gitfleet server's API with one bearer token. Its
// methods are safe for concurrent use; every one returns an *Error for an
// answer other than success.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the server at server ("http://host:8080", with or
// without a path prefix) that sends token as its bearer token (none if
// empty) through hc, or through an http.Client with Timeout if hc is nil.
func New(server, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://HOST[:PORT] or https://HOST[:PORT]", server)
	}
	if hc == nil {
		hc = &http.Client{Timeout: Timeout}
	}
	return &Client{base: u, token: token, http: hc}, nil
}

// Devices returns the page of the device list that q selects.
func (c *Client) Devices(ctx context.Context, q DeviceQuery) (DevicePage, error) {
	var p DevicePage
	err := c.do(ctx, http.MethodGet, "devices", q.Values(), nil, &p)
	return p, err
}

// Device returns device id.
func (c *Client) Device(ctx context.Context, id string) (Device, error) {
	var d Device
	err := c.do(ctx, http.MethodGet, "devices/"+url.PathEscape(id), nil, nil, &d)
	return d, err
}

// Events returns the page of device id's events that q selects.
func (c *Client) Events(ctx context.Context, id string, q EventQuery) (EventPage, error) {
	var p EventPage
	err := c.do(ctx, http.MethodGet, "devices/"+url.PathEscape(id)+"/events", q.Values(), nil, &p)
	return p, err
}

// Releases returns every release, newest first.
func (c *Client) Releases(ctx context.Context) ([]Release, error) {
	var l ReleaseList
	err := c.do(ctx, http.MethodGet, "releases", nil, nil, &l)
	return l.Releases, err
}

// Release returns the release with version ("1.4.0"), or the release of a
// tag ("v1.4.0") whatever its build state.
func (c *Client) Release(ctx context.Context, version string) (Release, error) {
	var r Release
	err := c.do(ctx, http.MethodGet, "releases/"+url.PathEscape(version), nil, nil, &r)
	return r, err
}

// Channels returns every channel, by name.
func (c *Client) Channels(ctx context.Context) ([]Channel, error) {
	var l ChannelList
	err := c.do(ctx, http.MethodGet, "channels", nil, nil, &l)
	return l.Channels, err
}

// Channel returns channel name.
func (c *Client) Channel(ctx context.Context, name string) (Channel, error) {
	var ch Channel
	err := c.do(ctx, http.MethodGet, "channels/"+url.PathEscape(name), nil, nil, &ch)
	return ch, err
}

// Pause pauses channel name's rollout, for reason, and returns the channel
// as it is then.
func (c *Client) Pause(ctx context.Context, name, reason string) (Channel, error) {
	return c.act(ctx, name, "pause", reason)
}

// Resume resumes channel name's rollout after a pause, halt or abort.
func (c *Client) Resume(ctx context.Context, name, reason string) (Channel, error) {
	return c.act(ctx, name, "resume", reason)
}

// Abort aborts channel name's rollout: devices keep what they run.
func (c *Client) Abort(ctx context.Context, name, reason string) (Channel, error) {
	return c.act(ctx, name, "abort", reason)
}

func (c *Client) act(ctx context.Context, name, action, reason string) (Channel, error) {
	var ch Channel
	err := c.do(ctx, http.MethodPost, "channels/"+url.PathEscape(name)+"/"+action, nil, Action{Reason: reason}, &ch)
	return ch, err
}

// ClearPenalty forgets device's failures to install release (a version),
// so the rollout offers it the release again: the device leaves the penalty
// box at the next rollout step.
func (c *Client) ClearPenalty(ctx context.Context, device, release, reason string) (Device, error) {
	var d Device
	err := c.do(ctx, http.MethodPost, "devices/"+url.PathEscape(device)+"/clear-penalty", nil, PenaltyClear{Release: release, Reason: reason}, &d)
	return d, err
}

// Promote makes version the release of channel: a commit to fleet.yaml.
func (c *Client) Promote(ctx context.Context, channel, version string) (Promotion, error) {
	var p Promotion
	err := c.do(ctx, http.MethodPost, "channels/"+url.PathEscape(channel)+"/promote", nil, PromoteRequest{Version: version}, &p)
	return p, err
}

// do sends a request to path under /api/v1 with query and, unless nil, body
// as JSON, and decodes a successful answer into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.base.JoinPath("api/v1", path)
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, u, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error already says "GET http://...: ".
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s %s: %w", method, u, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerError(method, u.String(), resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
	}
	return nil
}

// answerError returns the *Error a failed answer with body data stands for.
func answerError(method, u string, status int, data []byte) *Error {
	e := &Error{Method: method, URL: u, Status: status}
	var b ErrorBody
	if json.Unmarshal(data, &b) == nil && b.Error != "" {
		e.Code, e.Message = b.Code, b.Error
		return e
	}
	// Not the API's answer: a proxy's page, say. Its first line tells more
	// than nothing.
	first, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if len(first) > 200 {
		first = first[:200] + "..."
	}
	if first == "" {
		first = "empty answer"
	}
	e.Message = first
	return e
}
