// Package warm sizes the ready agents a template keeps: agents registered in Jenkins, pod running,
// agent connected, each waiting for the one build it will run.
//
// Everything here is pure: no clock reads (every function takes now), no I/O, no goroutines, so the
// controller's decide step can call it on a snapshot and a table test can check every case. Three
// sources give a count, and the template's warm block combines them:
//
//   - idle: a fixed number, always.
//   - schedules: like a Kubernetes CronJob, from each start of a five-field cron schedule, for a
//     duration, keep a number ready (Schedule.Active). The schedule is evaluated from the clock and
//     the template alone, so it survives restarts and failovers unchanged.
//   - adaptive: an Estimator fed with the template's build arrivals and measured start-up times
//     gives arrival rate × start-up time (Little's law: the builds that arrive while one agent
//     starts), plus a margin for the randomness of arrivals (TestAdaptiveSizingModel plays the
//     decide loop on a virtual clock against the latency and waste targets). It is the one
//     piece of memory: after a restart it starts from zero and refills from the demand it observes.
//
// Desired combines them: min(maxIdle, max(idle, every active schedule's idle, adaptive)). Fit then
// fits every template's demand and headroom into the template caps and the global cap, demand
// first: a ready agent never takes capacity that a waiting build could use.
package warm
