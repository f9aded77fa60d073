package lifecycle

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/util/workqueue"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

// Retries of one action on transient errors: 50 ms, 100 ms … at most 2 s apart, at most maxRetries
// times. After that the action is dropped; the next poll decides afresh from what the world shows.
const (
	retryBase  = 50 * time.Millisecond
	retryMax   = 2 * time.Second
	maxRetries = 5
)

// actor performs decided actions through client-go's rate-limited work queues, keyed by agent name:
// an agent with an action queued, running or waiting for its retry takes no second action, so two
// steps on one agent never race. Busy marks have their own lane and workers, so that a burst of
// creations never delays the mark that keeps a second build off a busy agent.
type actor struct {
	log  *zap.Logger
	run  func(ctx context.Context, a Action) error
	main workqueue.TypedRateLimitingInterface[string]
	fast workqueue.TypedRateLimitingInterface[string]

	mu       sync.Mutex
	pending  map[string]Action
	outcomes []Outcome
}

func newActor(log *zap.Logger, run func(context.Context, Action) error) *actor {
	limiter := func() workqueue.TypedRateLimiter[string] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[string](retryBase, retryMax)
	}
	return &actor{
		log:     log,
		run:     run,
		main:    workqueue.NewTypedRateLimitingQueueWithConfig(limiter(), workqueue.TypedRateLimitingQueueConfig[string]{Name: "lifecycle"}),
		fast:    workqueue.NewTypedRateLimitingQueueWithConfig(limiter(), workqueue.TypedRateLimitingQueueConfig[string]{Name: "lifecycle-marks"}),
		pending: map[string]Action{},
	}
}

// submit queues an action unless its agent already has one; it reports whether it was queued.
func (q *actor) submit(a Action) bool {
	q.mu.Lock()
	if _, busy := q.pending[a.Agent]; busy {
		q.mu.Unlock()
		return false
	}
	q.pending[a.Agent] = a
	q.mu.Unlock()
	q.lane(a).Add(a.Agent)
	return true
}

func (q *actor) lane(a Action) workqueue.TypedRateLimitingInterface[string] {
	if a.Kind == ActMarkBusy {
		return q.fast
	}
	return q.main
}

// busy reports whether an agent has an action queued, running or waiting for a retry.
func (q *actor) busy(agent string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.pending[agent]
	return ok
}

// work runs workers for both lanes until ctx ends, then lets the queued actions drain (they see
// the cancelled context and do nothing) and returns when no step is running.
func (q *actor) work(ctx context.Context, workers, fastWorkers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { q.worker(ctx, q.main) })
	}
	for range fastWorkers {
		wg.Go(func() { q.worker(ctx, q.fast) })
	}
	<-ctx.Done()
	var drain sync.WaitGroup
	drain.Go(q.main.ShutDownWithDrain)
	drain.Go(q.fast.ShutDownWithDrain)
	drain.Wait()
	wg.Wait()
}

func (q *actor) worker(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) {
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return
		}
		q.process(ctx, queue, key)
	}
}

func (q *actor) process(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string], key string) {
	defer queue.Done(key)
	q.mu.Lock()
	a, ok := q.pending[key]
	q.mu.Unlock()
	if !ok {
		queue.Forget(key)
		return
	}
	// No step starts once Run's context has ended: a shutdown leaves agents alone.
	var err error
	if ctx.Err() == nil {
		err = q.run(ctx, a)
	}
	if err != nil && ctx.Err() == nil && transient(err) && queue.NumRequeues(key) < maxRetries {
		q.log.Debug("retrying action", zap.String("agent", key), zap.String("action", string(a.Kind)), zap.Error(err))
		queue.AddRateLimited(key)
		return
	}
	if err != nil && ctx.Err() == nil {
		q.log.Warn("action failed; the next poll decides again", zap.String("agent", key), zap.String("template", a.Template),
			zap.String("action", string(a.Kind)), zap.Error(err))
	}
	queue.Forget(key)
	q.mu.Lock()
	delete(q.pending, key)
	q.mu.Unlock()
}

// report keeps an outcome for the next poll's decide.
func (q *actor) report(o Outcome) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.outcomes = append(q.outcomes, o)
}

func (q *actor) drainOutcomes() []Outcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.outcomes
	q.outcomes = nil
	return out
}

// transient reports whether an error may go away by itself within seconds: Jenkins or the API
// server unavailable, throttling, timeouts, a dropped connection.
func transient(err error) bool {
	switch {
	case errors.Is(err, jenkins.ErrUnavailable),
		apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err),
		utilnet.IsConnectionRefused(err), utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}
