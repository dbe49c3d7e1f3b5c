package link

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/gitfleet/gitfleet/internal/atomicfile"
	gitfleetv1 "github.com/gitfleet/gitfleet/proto/gitfleet/v1"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// A State is a signed state the link accepted: exactly one of Channel and
// Desired is set, as Topic's kind says.
type State struct {
	Topic   topic.Topic
	Channel *gitfleetv1.ChannelState
	Desired *gitfleetv1.DesiredState
}

// Sequence returns the state's sequence number.
func (s State) Sequence() uint64 {
	if s.Channel != nil {
		return s.Channel.GetSequence()
	}
	return s.Desired.GetSequence()
}

// release returns the version the state names, for logs.
func (s State) release() string {
	if s.Channel != nil {
		return s.Channel.GetRelease().GetVersion()
	}
	return s.Desired.GetRelease().GetVersion()
}

// errIgnored is returned by accept for a message that is neither accepted
// nor refused: an empty retained payload, or the state accepted last
// delivered again.
var errIgnored = errors.New("nothing new")

// accept runs the checks of proto/README.md ("Reading a message") on a
// message that arrived on the topic called name, in that order, and returns
// the state it carries if every check passes. A refusal is an error carrying
// its wire code (gitfleetv1.ErrorCodeOf).
func (l *Link) accept(ctx context.Context, name string, payload []byte, now time.Time) (State, error) {
	if len(payload) == 0 {
		// A cleared retained message: the server lifts overrides with a
		// signed ACTION_NONE instead, so this says nothing.
		return State{}, errIgnored
	}
	t, err := topic.Parse(name)
	if err != nil {
		return State{}, gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE, err)
	}
	if name != l.channelTopic && name != l.desiredTopic {
		return State{}, gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_MALFORMED_MESSAGE,
			fmt.Errorf("topic %s is neither this device's channel nor its desired topic", name))
	}
	env, err := gitfleetv1.DecodeSignedMessage(payload)
	if err != nil {
		return State{}, err
	}
	if err := verify(ctx, l.verifier, env); err != nil {
		return State{}, err
	}
	st := State{Topic: t}
	var expires time.Time
	switch t.Kind {
	case topic.KindChannel:
		if st.Channel, err = gitfleetv1.DecodeChannelState(env); err == nil {
			err = gitfleetv1.MatchTopic(t, st.Channel)
			expires = st.Channel.GetExpiresAt().AsTime()
		}
	default:
		if st.Desired, err = gitfleetv1.DecodeDesiredState(env); err == nil {
			err = gitfleetv1.MatchTopic(t, st.Desired)
			expires = st.Desired.GetExpiresAt().AsTime()
		}
	}
	if err != nil {
		return State{}, err
	}
	if !now.Before(expires) {
		return State{}, gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_EXPIRED,
			fmt.Errorf("sequence %d expired at %s", st.Sequence(), expires.UTC().Format(time.RFC3339)))
	}
	if err := l.seen.admit(name, st.Sequence(), env.GetPayload()); err != nil {
		return State{}, err
	}
	return st, nil
}

// seenName is the file, in Config.Dir, that keeps the last accepted
// sequence of each topic.
const seenName = "accepted.json"

// A seenState is the last state accepted on one topic.
type seenState struct {
	Sequence uint64 `json:"sequence"`
	// PayloadSHA256 is the hex SHA-256 of the signed payload, to tell the
	// same state delivered again from another one with the same sequence.
	PayloadSHA256 string `json:"payload_sha256"`
}

// seen remembers, on disk, the last sequence accepted per topic, so that
// neither a replay nor a restart makes the device accept an older state.
type seen struct {
	path string

	mu    sync.Mutex
	last  map[string]seenState // by topic name; persisted
	given map[string]bool      // topics whose last state was handed over in this run
}

// loadSeen reads the file at path; a missing file means nothing accepted yet.
func loadSeen(path string) (*seen, error) {
	s := &seen{path: path, last: map[string]seenState{}, given: map[string]bool{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &s.last)
	}
	if err != nil {
		// Only damaged media breaks a file that is replaced atomically.
		// Starting afresh would let a replayed, unexpired state through.
		return nil, fmt.Errorf("read the accepted sequences: %w (delete %s to accept the current signed states again)", err, path)
	}
	return s, nil
}

// admit decides on a verified, unexpired state with seq and payload on the
// topic called name, following proto/README.md: a lower sequence is a
// replay, and an equal one is either the same state delivered again or a
// forgery of another with the same number. It persists a new sequence
// before returning nil. The state accepted last is handed over again once
// per run, so an agent that restarted learns what its channel says.
func (s *seen) admit(name string, seq uint64, payload []byte) error {
	sum := sha256.Sum256(payload)
	digest := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.last[name]
	switch {
	case ok && seq < last.Sequence:
		return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_STALE_MESSAGE,
			fmt.Errorf("sequence %d is below %d, the last accepted: a replay", seq, last.Sequence))
	case ok && seq == last.Sequence && digest != last.PayloadSHA256:
		return gitfleetv1.WithCode(gitfleetv1.ErrorCode_ERROR_CODE_STALE_MESSAGE,
			fmt.Errorf("sequence %d was accepted before with other content", seq))
	case ok && seq == last.Sequence:
		if s.given[name] {
			return errIgnored
		}
	default:
		next := make(map[string]seenState, len(s.last)+1)
		for k, v := range s.last {
			next[k] = v
		}
		next[name] = seenState{Sequence: seq, PayloadSHA256: digest}
		b, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("record sequence %d: %w", seq, err)
		}
		if err := atomicfile.Write(s.path, b, 0o600); err != nil {
			return fmt.Errorf("record sequence %d: %w", seq, err)
		}
		s.last = next
	}
	s.given[name] = true
	return nil
}
