package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gitfleet/gitfleet/internal/atomicfile"
	"github.com/gitfleet/gitfleet/proto/topic"
)

// RetainedFile is the file, in Config.DataDir, that keeps the retained
// channel and desired states across restarts.
const RetainedFile = "retained.json"

// retainedRecord is one retained message in RetainedFile.
type retainedRecord struct {
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
	// Created is when the broker received the message, in Unix seconds.
	Created int64 `json:"created"`
}

// retainedStore is the hook that keeps the retained messages of the
// server's own topics — channel and desired states — in a file, from which
// New gives them back to the broker. They are few (one per channel and
// per device override) and change a few times an hour, so the whole file is
// rewritten atomically at each change. Devices' retained statuses are not
// kept: a device publishes its status again as soon as it reconnects, and the
// fleet database holds the last one.
type retainedStore struct {
	mqtt.HookBase
	path string
	log  *slog.Logger

	mu   sync.Mutex
	msgs map[string]retainedRecord
}

// openRetainedStore reads the retained states kept in dir, if any.
func openRetainedStore(dir string, log *slog.Logger) (*retainedStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("retained states: %w", err)
	}
	s := &retainedStore{path: filepath.Join(dir, RetainedFile), log: log, msgs: map[string]retainedRecord{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	var recs []retainedRecord
	if err == nil {
		err = json.Unmarshal(b, &recs)
	}
	if err != nil {
		return nil, fmt.Errorf("read retained states: %w (delete %s: the server publishes its states again)", err, s.path)
	}
	for _, r := range recs {
		if kept(r.Topic) {
			s.msgs[r.Topic] = r
		}
	}
	return s, nil
}

func (s *retainedStore) ID() string { return "gitfleet-retained" }

func (s *retainedStore) Provides(b byte) bool {
	return b == mqtt.OnRetainMessage
}

// kept reports whether the retained message on the topic called name is one
// the store keeps.
func kept(name string) bool {
	t, err := topic.Parse(name)
	return err == nil && (t.Kind == topic.KindChannel || t.Kind == topic.KindDesired)
}

// OnRetainMessage records a retained message, or its removal (r is -1 when
// an empty payload cleared the topic).
func (s *retainedStore) OnRetainMessage(_ *mqtt.Client, pk packets.Packet, r int64) {
	if !kept(pk.TopicName) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r == -1 || len(pk.Payload) == 0 {
		delete(s.msgs, pk.TopicName)
	} else {
		created := pk.Created
		if created == 0 {
			created = time.Now().Unix()
		}
		s.msgs[pk.TopicName] = retainedRecord{Topic: pk.TopicName, Payload: append([]byte(nil), pk.Payload...), Created: created}
	}
	if err := s.write(); err != nil {
		s.log.Error("broker: keep retained states; they will be lost at a restart until the server publishes them again", "err", err)
	}
}

// write replaces the file with the messages held now.
func (s *retainedStore) write() error {
	recs := make([]retainedRecord, 0, len(s.msgs))
	for _, r := range s.msgs {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Topic < recs[j].Topic })
	b, err := json.Marshal(recs)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	if err := atomicfile.Write(s.path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

// packets returns the messages read at start, as retained packets.
func (s *retainedStore) packets() []packets.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]packets.Packet, 0, len(s.msgs))
	for _, r := range s.msgs {
		out = append(out, packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true},
			TopicName:   r.Topic,
			Payload:     r.Payload,
			Created:     r.Created,
		})
	}
	return out
}

// unretained is the hook that keeps devices' statuses, and their last
// wills, from being retained. The server in the same process hears each one
// as it comes and the fleet database keeps the last; and mochi-mqtt looks at
// every retained message once a second, which for the statuses of a whole
// fleet costs a core.
type unretained struct {
	mqtt.HookBase
}

func (*unretained) ID() string { return "gitfleet-unretained" }

func (*unretained) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnWill }

func (*unretained) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && isStatus(pk.TopicName) {
		pk.FixedHeader.Retain = false
	}
	return pk, nil
}

func (*unretained) OnWill(_ *mqtt.Client, w mqtt.Will) (mqtt.Will, error) {
	if w.Retain && isStatus(w.TopicName) {
		w.Retain = false
	}
	return w, nil
}

// isStatus reports whether the topic called name is a device's status topic.
func isStatus(name string) bool {
	if !strings.HasSuffix(name, "/status") {
		return false
	}
	t, err := topic.Parse(name)
	return err == nil && t.Kind == topic.KindStatus
}
