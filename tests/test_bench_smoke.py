"""Smoke test of the benchmark harness: every benchmark's core runs end to end
with tiny sizes. No timing is asserted here (speed targets live in bench/)."""

from __future__ import annotations

import shutil
import threading

import pytest

from bench import __main__ as bench_main
from bench import cluster, devices, failover, fanout, gateway_api, report, soak, stats, writer_cost
from bench import fence as bench_fence
from bench import http as bench_http
from bench import outbox_cluster as bench_outbox_cluster
from bench import store as bench_store


def test_helpers_compute_percentiles_and_slopes() -> None:
    """Nearest-rank percentiles and the least-squares slope give the textbook answers."""
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.summarize_ms([0.001, 0.002])["max"] == 2.0
    assert stats.slope_per_minute([(0, 10.0), (60, 12.0), (120, 14.0)]) == pytest.approx(2.0)
    assert len(set(gateway_api.valid_tokens(5))) == 5


def test_summary_collects_targets_from_results() -> None:
    """The runner turns each module's ``targets`` into table rows."""
    rows = bench_main.targets_of("x", {"targets": {"p99": {"value": 1.5, "target": "< 2", "verdict": "PASS"}}})
    assert rows == [("x.p99", 1.5, "< 2", "PASS")]
    assert "x.p99" in report.table(rows, ("figure", "value", "target", "verdict"))


@pytest.mark.bench
def test_http_benchmark_runs() -> None:
    """wrk and the constant-rate driver run against the gateway and the bare app (one round: wrk runs
    whole seconds with both cores busy; how rounds combine is the next test's)."""
    assert shutil.which("wrk"), "wrk is missing: `make test` installs it (apt-get install -y wrk)"
    result = bench_http.run(seconds=1, connections=4, rate=50, latency_seconds=0.5, warmup=0, rounds=1)
    assert result["throughput"]["bare GET /health"]["requests"] > 0
    assert result["throughput"]["gateway GET /health"]["error_total"] == 0
    assert result["latency_at_rate"]["gateway GET /health"]["ok"] == 25
    assert result["throughput"]["bare POST /echo"]["rps_rounds"] == [result["throughput"]["bare POST /echo"]["rps"]]
    ratios = result["targets"]["messages_vs_bare_ratio"]["rounds"]
    assert len(ratios) == 1 and result["targets"]["messages_vs_bare_ratio"]["value"] == ratios[0] > 0


def test_http_rounds_report_the_median_round_and_per_round_ratios() -> None:
    """A case reports its median round with every round alongside; a ratio is taken round by round."""
    rounds = [{"rps": 300.0, "round": 1}, {"rps": 100.0, "round": 2}, {"rps": 200.0, "round": 3}]
    median = bench_http._median_round(rounds)
    assert (median["round"], median["rps_rounds"]) == (3, [300.0, 100.0, 200.0])
    assert bench_http._median_round(rounds[:2])["round"] == 2  # of two, the lower
    throughput = {"a": {"rps_rounds": [50.0, 30.0]}, "b": {"rps_rounds": [100.0, 0.0]}}
    assert bench_http.round_ratios(throughput, "a", "b") == [0.5, 0.0]


@pytest.mark.bench
def test_fanout_benchmark_loses_no_frame() -> None:
    """Every accepted incoming message reaches its device's listener and the catch-all one."""
    result = fanout.run(devices=3, wildcards=1, rate=30, seconds=1, procs=1, drain_seconds=10)
    assert result["messages_accepted"] == 30
    assert result["frames_lost"] == 0
    assert result["frames_duplicated"] == 0


@pytest.mark.bench
def test_devices_benchmark_restores_every_device() -> None:
    """Paired devices come back connected after SIGTERM and a restart on the same DATA_DIR."""
    result = devices.run(devices=3, restore_timeout=20)
    assert result["pairing"]["connected"] == 3
    assert result["restart"]["connected"] == 3
    assert result["shutdown"]["exit_code"] == 0


@pytest.mark.bench
def test_soak_samples_memory() -> None:
    """A few seconds of mixed traffic produce RSS samples and a slope."""
    result = soak.run(minutes=0.05, devices=2, rate=10, sample_every=1, listeners=2, warmup_sends=5)
    assert len(result["rss_mb_samples"]) >= 2
    assert result["pairing"]["failed"] == 0
    assert result["warmup"] == {"sends": 10, "failed": 0, "seconds": result["warmup"]["seconds"]}


@pytest.mark.bench
def test_messages_benchmark_runs() -> None:
    """The message-store benchmark loads, pages by cursor, lists chats and measures the file."""
    from bench import messages

    result = messages.run(n_devices=2, n_messages=400, requests=3)
    assert result["messages"] == 400 and result["disk_mb"] > 0
    assert result["latency_ms"]["pages"]["count"] == 6 and result["latency_ms"]["chats"]["count"] == 3


@pytest.mark.bench
def test_media_benchmark_streams_and_sends() -> None:
    """Small sizes: the upload and the URL fetch succeed with their RSS measured; every send by id lands."""
    from bench import media

    result = media.run(mb=4, recipients=10, concurrency=3, incoming_rate=5, incoming_seconds=1)
    assert result["upload"]["mb"] == 4 and result["url_fetch"]["status"] == 200
    assert [r["failures"] for r in result["fan_out"]] == [0, 0]
    incoming = result["incoming"]
    assert incoming["offered"] == incoming["delivered"] == incoming["stored"] == 5 and incoming["urls_checked"] >= 1
    assert set(result["targets"]) == {
        "upload_50mb_rss_growth_mb",
        "url_fetch_50mb_rss_growth_mb",
        "send_by_id_per_s",
        "send_by_id_p99_ms",
        "incoming_all_delivered_and_stored",
        "incoming_event_to_webhook_p99_ms",
    }


@pytest.mark.bench
def test_cluster_outbox_benchmark_delivers_every_row_once() -> None:
    """Nodes on one PostgreSQL outbox: every row of the backlog arrives once, signed, with one node and with two."""
    result = bench_outbox_cluster.run(backlog=200, nodes=2)
    assert [r["nodes"] for r in result["runs"]] == [1, 2]
    for r in result["runs"]:
        assert r["received"] == 200 and r["left_pending"] == 0 and r["bad_signatures"] == 0
    assert result["targets"]["webhooks_lost"]["value"] == 0


@pytest.mark.bench
def test_fence_benchmark_times_the_trigger_and_refuses_every_stale_write() -> None:
    """The three kinds of write are timed, and a node without the lease writes nothing of another's device."""
    result = bench_fence.run(rows=50, rounds=1, devices=6)
    assert set(result["us_per_insert"]) == {"holder", "no_node", "no_trigger"}
    assert result["stale_writes"] == {"refused": 5, "tried": 5}
    assert result["targets"]["stale_node_writes_let_through"]["value"] == 0


@pytest.mark.bench
def test_store_benchmark_runs_on_both_engines() -> None:
    """The store's units of work, grouped and one by one, on SQLite and PostgreSQL: every message stored."""
    result = bench_store.run(n_devices=3, per_device=4)
    assert set(result["results"]) == {f"{e} {m}" for e in ("sqlite", "postgres") for m in ("grouped", "one device")}
    assert result["results"]["postgres grouped"]["events"] == 12
    assert result["targets"]["postgres_group_commit_gain"]["value"] > 0


@pytest.mark.bench
def test_writer_cost_times_the_writer_thread_alone() -> None:
    """Every send and both its receipts are applied (the benchmark checks the last one reads as read),
    and only the writer's _run_batch is timed, restored afterwards; the GIL spinner's thread ends."""
    original = writer_cost.db._run_batch
    result = writer_cost.run(sends=300, batch=100, ids=8, rounds=1)
    assert writer_cost.db._run_batch is original
    assert len(result["rounds"]) == 1 and result["rounds"][0] > 0
    assert result["targets"]["writer_cpu_us_per_send"]["value"] == round(result["rounds"][0], 1)
    assert len(result["gil_rounds"]) == 1 and result["gil_rounds"][0] >= 0
    assert result["targets"]["writer_gil_us_per_send"]["value"] == round(result["gil_rounds"][0], 1)
    assert not [t for t in threading.enumerate() if t.name == "gil-spinner"]


@pytest.mark.bench
def test_campaigns_benchmark_creates_paces_and_measures_its_neighbours() -> None:
    """Small sizes: the CSV create is counted right, the paced sends are judged, both p99s are measured."""
    from bench import campaigns

    result = campaigns.run(recipients=2000, minutes=1, scale=30, devices=2, rate=50, seconds=1, rounds=1, warmup=0.5)
    assert result["create"]["campaign"] == {"total": 2000, "pending": 1960, "skipped": 40, "status": "scheduled"}
    pace = result["pace"]
    assert pace["sends"] >= 30 and pace["max_sends_in_a_rolling_minute"] <= 60
    assert [r["campaigns_running"] for r in result["neighbours"]["rounds"]] == [False, True]
    assert all(r["ok"] == 50 for r in result["neighbours"]["rounds"])
    assert set(result["targets"]) == {
        "create_seconds",
        "create_rss_growth_mb",
        "pace_gaps_within_jitter_bounds",
        "pace_max_per_rolling_minute",
        "messages_p99_added_by_campaigns_ms",
    }


def test_the_pace_judge_tells_held_late_and_bunched_gaps_apart() -> None:
    """judge_pace: a gap under 0.7 s is counted, one over 1.3 s is excused only by the rolling minute or
    the tolerance, and the busiest minute is counted."""
    from bench.campaigns import judge_pace, max_per_minute

    steady = [float(i) for i in range(80)]  # one a second
    verdict = judge_pace(steady, scale=1, slack_ms=10)
    assert (verdict["below_lower_bound"], verdict["above_upper_beyond_tolerance"]) == (0, 0)
    assert verdict["max_sends_in_a_rolling_minute"] == 60 == max_per_minute(steady)
    bunched = [*steady[:40], 39.5, *[t + 0.5 for t in steady[40:]]]
    assert judge_pace(bunched, scale=1, slack_ms=10)["below_lower_bound"] == 1
    late = [*steady[:30], *[t + 2.0 for t in steady[30:]]]  # a 3 s gap not explained by the minute
    assert judge_pace(late, scale=1, slack_ms=10)["above_upper_beyond_tolerance"] == 1


def test_failover_benchmark_moves_a_dead_nodes_devices() -> None:
    """3 real nodes: kill -9 of one, its devices connected once on the others, no webhook lost."""
    result = failover.run(devices=6, nodes=3, ttl=3)
    assert result["moved"] >= 2 and result["double_connections"] == 0
    assert result["webhooks"]["lost"] == 0 and result["webhooks"]["stored"] >= 6


@pytest.mark.bench
def test_cluster_benchmark_times_local_and_forwarded_sends() -> None:
    """Both kinds of POST /messages are answered 200 and timed; every forwarded one was served by the owner."""
    result = cluster.run(requests=10, warmup=2, in_process=True)
    assert result["local"]["count"] == result["forwarded"]["count"] == 10
    assert result["served_by_owner"] == 12
    result = cluster.run(requests=5, warmup=1)  # two real processes
    assert result["local"]["count"] == result["forwarded"]["count"] == 5
    assert result["targets"]["forwarded_p99_added_ms"]["verdict"] in ("PASS", "MISS")
