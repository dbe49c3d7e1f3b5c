package api

import (
	"net/http"
	"strings"

	"github.com/gitfleet/gitfleet/server/apiclient"
	"github.com/gitfleet/gitfleet/server/store"
)

// releases answers GET /api/v1/releases: every release, newest claim first,
// builds in progress and failed ones included.
func (s *Server) releases(_ http.ResponseWriter, r *http.Request) (any, error) {
	rs, err := s.cfg.Store.Releases(r.Context())
	if err != nil {
		return nil, err
	}
	out := apiclient.ReleaseList{Releases: make([]apiclient.Release, len(rs))}
	for i, rel := range rs {
		out.Releases[i] = releaseOf(rel)
	}
	return out, nil
}

// release answers GET /api/v1/releases/{version}. A version is a release's
// ("1.4.0"), which only built releases have; a tag ("v1.4.0") finds a
// release whatever its build state.
func (s *Server) release(_ http.ResponseWriter, r *http.Request) (any, error) {
	v := r.PathValue("version")
	var rel store.Release
	var err error
	if strings.HasPrefix(v, "v") {
		rel, err = s.cfg.Store.ReleaseByTag(r.Context(), v)
	} else {
		rel, err = s.cfg.Store.Release(r.Context(), v)
	}
	if err != nil {
		return nil, notFound(err, "release", v)
	}
	return releaseOf(rel), nil
}

func releaseOf(r store.Release) apiclient.Release {
	out := apiclient.Release{
		Version: r.Version, Counter: r.Counter, Product: r.Product, DeviceTypes: r.DeviceTypes,
		Provenance: apiclient.Provenance{Tag: r.Tag, TagObject: r.TagObject, Commit: r.Commit, Signer: r.Signer},
		Bundle:     apiclient.Bundle{Digest: r.BundleDigest, Size: r.BundleSize},
		Objects:    r.ObjectKeys,
		Build: apiclient.Build{
			State: string(r.BuildState), Error: r.BuildError, Log: r.BuildLog, Created: utc(r.Created),
		},
	}
	if out.DeviceTypes == nil {
		out.DeviceTypes = []string{}
	}
	if out.Objects == nil {
		out.Objects = map[string]string{}
	}
	if !r.Finished.IsZero() {
		f := utc(r.Finished)
		out.Build.Finished = &f
	}
	return out
}
