package broker

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// BenchmarkCallbackRedisWait is BenchmarkCallback on Redis with a replica,
// with session.redis.wait off (replicas=0) and on (replicas=1), side by
// side: run with -count to alternate them. The difference is what waiting
// for the replica costs a login; wait-calls/op counts the WAITs a login
// sends (the session, the index, the spent state); cpu-ns/op is the
// process's CPU time (user and system, the in-process IdP's included, not
// Redis's) per login, so that waiting shows apart from working.
//
//	go test ./broker -run '^$' -bench CallbackRedisWait -count 6
func BenchmarkCallbackRedisWait(b *testing.B) {
	primary := redisserver.Start(b)
	replica := redisserver.StartWith(b, redisserver.Options{ReplicaOf: primary.Addr})
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, _ := redis.String(replica.Do("INFO", "replication"), nil)
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the replica did not sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range []int{0, 1} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			before, cpu := waitCalls(primary), reportCPU(b)
			benchCallback(b, SessionConfig{Store: "redis", Redis: RedisConfig{Address: primary.Addr, KeyPrefix: "bench:",
				Wait: WaitConfig{Replicas: &n}}})
			b.ReportMetric(float64(waitCalls(primary)-before)/float64(b.N), "wait-calls/op")
			cpu()
		})
	}
}

var waitStat = regexp.MustCompile(`cmdstat_wait:calls=(\d+)`)

// waitCalls is how many WAIT commands r has answered.
func waitCalls(r *redisserver.Server) int {
	stats, _ := redis.String(r.Do("INFO", "commandstats"), nil)
	m := waitStat.FindStringSubmatch(stats)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
