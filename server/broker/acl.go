package broker

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/gitfleet/gitfleet/proto/topic"
)

// RenderMosquittoACL returns a Mosquitto acl_file that grants what the
// embedded broker grants: serverUser (if not empty) may publish and
// subscribe anywhere; every other account is a device that publishes only to
// its own status and events topics and reads only its fleet's channel topics
// and its own desired topic, in each of fleets.
//
// The rules are pattern lines on %u, the username: with mutual TLS, set
// use_identity_as_username true on the listener so that a device's
// certificate common name is its username, and keep the server's account
// out of the names the device CA signs. Mosquitto checks read rules when it
// delivers a message rather than when a client subscribes, and drops a
// forbidden publish without a word; the outcome — what reaches whom — is the
// embedded broker's.
//
// A fleet name may not hold '%', which Mosquitto would read as %u or %c.
func RenderMosquittoACL(serverUser string, fleets []string) ([]byte, error) {
	if len(fleets) == 0 {
		return nil, errors.New("render Mosquitto ACL: no fleets")
	}
	var b bytes.Buffer
	b.WriteString(`# Mosquitto acl_file rendered by gitfleet-server: the rules of its embedded broker.
# Every account but the server's is a device, named by its username or, on a listener with
# use_identity_as_username true, by its client certificate's common name. A device publishes
# only its own status and events and reads only its fleet's channels and its own desired state.
`)
	if serverUser != "" {
		if err := topic.CheckID(serverUser); err != nil {
			return nil, fmt.Errorf("render Mosquitto ACL: server account: %w", err)
		}
		fmt.Fprintf(&b, "\nuser %s\ntopic readwrite #\n", serverUser)
	}
	for _, f := range fleets {
		if strings.Contains(f, "%") {
			return nil, fmt.Errorf("render Mosquitto ACL: fleet %q holds '%%', which Mosquitto would substitute", f)
		}
		status, err := topic.Status(f, "%u")
		if err != nil {
			return nil, fmt.Errorf("render Mosquitto ACL: %w", err)
		}
		events, _ := topic.Events(f, "%u")
		desired, _ := topic.Desired(f, "%u")
		channels, _ := topic.Filter(topic.KindChannel, f)
		fmt.Fprintf(&b, "\n# fleet %s\npattern write %s\npattern write %s\npattern read %s\npattern read %s\n",
			f, status, events, channels, desired)
	}
	return b.Bytes(), nil
}
