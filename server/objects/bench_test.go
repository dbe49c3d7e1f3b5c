package objects_test

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitfleet/gitfleet/internal/testenv"
	"github.com/gitfleet/gitfleet/server/objects"
)

// BenchmarkPutObject uploads 64 MiB objects, each under a new key, from a
// stream as bundle.Explode hands them over. Beside the throughput (MB/s) it
// reports the physical limit measured in the same run (disk-MB/s), writing
// and syncing the same bytes to a file on the disk that holds the temp
// directories, where both the Local store and the test S3 server keep their
// data, and the ratio of the two (x-disk).
//
//	scripts/with-services.sh go test -run '^$' -bench PutObject -benchtime 5x ./server/objects/
func BenchmarkPutObject(b *testing.B) {
	const size = 64 << 20
	data := func() io.Reader { return noReadAt{io.LimitReader(rand.NewChaCha8([32]byte{1}), size)} }
	disk := diskWrite(b, data(), size)

	for _, bk := range []struct {
		name string
		new  func(b *testing.B) store
	}{
		{"s3", func(b *testing.B) store {
			conf := s3Config(testenv.S3(b))
			conf.PartSize = 0 // the default
			s, err := objects.NewS3(b.Context(), conf)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"local", func(b *testing.B) store { return newLocal(b, objects.LocalConfig{}) }},
	} {
		b.Run(bk.name, func(b *testing.B) {
			s := bk.new(b)
			b.SetBytes(size)
			n := 0
			for b.Loop() {
				if err := s.PutObject(b.Context(), fmt.Sprintf("blobs/bench-%d", n), data(), size); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(size)/disk.Seconds()/1e6, "disk-MB/s")
			b.ReportMetric(float64(disk)/(float64(b.Elapsed())/float64(n)), "x-disk")
		})
	}
}

// diskWrite returns the shortest of three times it takes to write size
// bytes from r to a new file in a temp directory and sync it.
func diskWrite(b *testing.B, r io.Reader, size int64) time.Duration {
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	best := time.Duration(math.MaxInt64)
	for i := range 3 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		_, err = f.Write(buf)
		if err == nil {
			err = f.Sync()
		}
		best = min(best, time.Since(start))
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	return best
}
