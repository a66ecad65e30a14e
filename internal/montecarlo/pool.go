package montecarlo

import (
	"context"
	"hash/fnv"
	"strconv"

	"golang.org/x/sync/errgroup"
)

// parallel calls fn(ctx, i) for every i in [0, n) on at most workers
// goroutines and returns the results in index order, so that each result
// depends on its index (its seed) only, never on scheduling. The first error
// cancels the calls not yet started and is returned.
func parallel[T any](ctx context.Context, n, workers int, fn func(context.Context, int) (T, error)) ([]T, error) {
	out := make([]T, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := range n {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			v, err := fn(ctx, i)
			out[i] = v
			return err
		})
	}
	return out, g.Wait()
}

// seedOf derives the seed of run i of the experiment named name from the
// suite's seed: experiments draw independent histories, and adding one
// leaves the others' unchanged.
func seedOf(suite uint64, name string, i int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatUint(suite, 10) + "/" + name + "/" + strconv.Itoa(i)))
	return splitmix(h.Sum64())
}

// splitmix is SplitMix64's finalizer: it spreads FNV's output over all bits.
func splitmix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
