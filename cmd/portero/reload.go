package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portero/portero/configs"
	"github.com/portero/portero/proxy"
)

// watchConfig reloads the route table on SIGHUP and whenever the file
// changes. A file that does not load or validate is refused: the table in
// force stays, and the refusal is logged.
//
// A change is acted on only once the file has stayed the same for a whole
// poll interval: an editor or a copy that writes in pieces can leave a
// half-written file that is valid YAML (cut before "routes:", say), and
// applying that would drop every route it had not written yet.
func watchConfig(ctx context.Context, path string, getenv func(string) string, router tableSwapper, reloads *prometheus.CounterVec, log *zap.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := fileStamp(path)
	settling := false // changed since the last reload, waiting to stay put
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			last, settling = fileStamp(path), false
			reload(path, getenv, router, reloads, log, "sighup")
		case <-tick.C:
			switch st := fileStamp(path); {
			case st != last:
				last, settling = st, true
			case settling:
				settling = false
				reload(path, getenv, router, reloads, log, "file_changed")
			}
		}
	}
}

type stamp struct {
	mod  time.Time
	size int64
}

func fileStamp(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{fi.ModTime(), fi.Size()}
}

// newReloadCounter counts reloads by result (ok, refused).
func newReloadCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portero_config_reloads_total", Help: "Route table reloads, by result (ok, refused).",
	}, []string{"result"})
	reg.MustRegister(c)
	return c
}

func reload(path string, getenv func(string) string, router tableSwapper, reloads *prometheus.CounterVec, log *zap.Logger, trigger string) {
	cfg, err := configs.Load(path, getenv)
	var table *proxy.Table
	if err == nil {
		table, err = proxy.NewTable(cfg.DefaultMode, cfg.Routes)
	}
	if err != nil {
		reloads.WithLabelValues("refused").Inc()
		log.Error("config reload refused; the previous route table stays", zap.String("trigger", trigger), zap.Error(err))
		return
	}
	reloads.WithLabelValues("ok").Inc()
	router.Swap(table)
	log.Info("route table reloaded", zap.String("trigger", trigger), zap.Int("routes", len(cfg.Routes)), zap.String("default_mode", cfg.DefaultMode))
}
