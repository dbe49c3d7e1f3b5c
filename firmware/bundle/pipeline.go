package bundle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// NewPipelinedImageReader is NewImageReader with read-ahead: one goroutine
// reads chunks from src while others hash them, up to depth chunks ahead,
// so reading, hashing on every core, and the caller's writing overlap.
// Chunks are still handed out in order and only once verified. depth <= 0
// means one more than the number of CPUs. Memory is depth chunks. The
// caller must Close the reader to stop the read-ahead.
func NewPipelinedImageReader(src io.Reader, im *Image, from int, depth int) (*ImageReader, error) {
	if from < 0 || from > len(im.Chunks) {
		return nil, fmt.Errorf("image %s: resume at chunk %d of %d", im.Name, from, len(im.Chunks))
	}
	if depth <= 0 {
		depth = runtime.GOMAXPROCS(0) + 1
	}
	p := &pipeline{
		results: make(chan *job, depth),
		free:    make(chan []byte, depth),
		stop:    make(chan struct{}),
	}
	for range depth {
		p.free <- getChunk(im.ChunkSize)
	}
	p.size = im.ChunkSize
	p.wg.Add(1)
	go p.read(src, im, from)
	return &ImageReader{im: im, src: src, next: from, pipe: p}, nil
}

// A pipeline reads and hashes chunks ahead of an ImageReader's consumer.
type pipeline struct {
	results chan *job     // chunks in order; closed after the last or an error
	free    chan []byte   // chunk buffers not in use
	stop    chan struct{} // closed by Close
	wg      sync.WaitGroup
	held    []byte // the buffer the consumer is reading from
	once    sync.Once
	size    int64 // chunk size, for returning buffers to the pool
}

type job struct {
	buf  []byte
	n    int64
	err  error
	done chan struct{} // closed when err is final
}

// read is the read-ahead goroutine. It owns src until it returns.
func (p *pipeline) read(src io.Reader, im *Image, from int) {
	defer p.wg.Done()
	defer close(p.results)
	for i := from; i < len(im.Chunks); i++ {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.stop:
			return
		}
		n := im.ChunkLen(i)
		j := &job{buf: buf, n: n, done: make(chan struct{})}
		got, err := io.ReadFull(src, buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: image %s ends in chunk %d at byte %d of %d", ErrTruncated, im.Name, i, int64(i)*im.ChunkSize+int64(got), im.Size)
			} else {
				err = fmt.Errorf("read image %s chunk %d: %w", im.Name, i, err)
			}
			j.err = err
			close(j.done)
			select {
			case p.results <- j:
			case <-p.stop:
			}
			return
		}
		p.wg.Add(1)
		go func(i int) {
			defer p.wg.Done()
			if Digest(sha256.Sum256(j.buf[:j.n])) != im.Chunks[i] {
				j.err = fmt.Errorf("%w: image %s chunk %d (bytes %d-%d): SHA-256 does not match the manifest", ErrCorrupt, im.Name, i, int64(i)*im.ChunkSize, int64(i)*im.ChunkSize+j.n-1)
			}
			close(j.done)
		}(i)
		select {
		case p.results <- j:
		case <-p.stop:
			return
		}
	}
}

// nextChunk returns the next verified chunk, or io.EOF after the last.
func (p *pipeline) nextChunk() ([]byte, error) {
	if p.held != nil {
		p.free <- p.held
		p.held = nil
	}
	j, ok := <-p.results
	if !ok {
		return nil, io.EOF
	}
	<-j.done
	if j.err != nil {
		p.free <- j.buf
		return nil, j.err
	}
	p.held = j.buf
	return j.buf[:j.n], nil
}

// close stops the read-ahead and waits for its goroutines.
func (p *pipeline) close() {
	p.once.Do(func() {
		close(p.stop)
		// Drain so the reader goroutine is not stuck sending.
		go func() {
			for range p.results {
			}
		}()
		p.wg.Wait()
		// Every buffer is back in free or held now: recycle them, so the
		// next image or pass (the read-back after the write) reuses them.
		if p.held != nil {
			putChunk(p.size, p.held)
			p.held = nil
		}
		for {
			select {
			case b := <-p.free:
				putChunk(p.size, b)
			default:
				return
			}
		}
	})
}

// chunkPools recycle chunk buffers by size: an install reads every image
// twice (write, then read back), and devices are short of memory.
var chunkPools sync.Map // int64 → *sync.Pool

func getChunk(size int64) []byte {
	if p, ok := chunkPools.Load(size); ok {
		if b, ok := p.(*sync.Pool).Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, size)
}

func putChunk(size int64, b []byte) {
	p, _ := chunkPools.LoadOrStore(size, new(sync.Pool))
	p.(*sync.Pool).Put(&b)
}
