"""bench/_rounds.py: the figures bench/mesh.py reports from interleaved rounds.

The issue's ratio is the median of per-round ratios (each round measures every path seconds apart), so
one round disturbed by the machine's load does not decide it; the CPU ratios say which path costs more
per request and on which side. Fed plain round results here, as the load generator prints them.
"""

from __future__ import annotations

import math

import pytest

from bench import _rounds
from bench._httpload import parse_wrk


def rnd(rps: float, client_us: float | None = None, server_us: float | None = None, p99: float = 2.0) -> dict:
    r = {"rps": rps, "p50_ms": 1.0, "p99_ms": p99, "errors": 0, "requests": rps * 3, "tool": "python"}
    if client_us is not None:
        r |= {"client_cpu_us": client_us, "server_cpu_us": server_us}
    return r


def test_the_ratio_is_the_median_of_per_round_ratios_not_a_ratio_of_medians():
    runs = {"direct": [rnd(100), rnd(200), rnd(50)], "mesh": [rnd(95), rnd(120), rnd(49)]}
    out = _rounds.summary(runs)
    assert out["mesh"]["ratio"] == pytest.approx(0.95), "per round: 0.95, 0.6, 0.98 -> median 0.95"
    assert (out["mesh"]["min_ratio"], out["mesh"]["max_ratio"]) == (pytest.approx(0.6), pytest.approx(0.98))
    assert out["direct"]["rps"] == 100 and out["mesh"]["rps"] == 95, "req/s: the median round of each path"
    assert out["direct"]["ratio"] == 1.0


def test_cpu_ratios_compare_both_sides_together_and_the_busier_side():
    runs = {"direct": [rnd(100, 40, 20), rnd(100, 40, 20)], "mesh": [rnd(90, 44, 26), rnd(90, 44, 26)]}
    mesh = _rounds.summary(runs)["mesh"]
    assert mesh["cpu_ratio"] == pytest.approx(60 / 70)
    assert mesh["busiest_cpu_ratio"] == pytest.approx(40 / 44), "the client is the busier side on both paths"
    assert (mesh["client_cpu_us"], mesh["server_cpu_us"]) == (44, 26)


def test_without_cpu_figures_wrk_rounds_still_give_req_s_and_p99():
    runs = {"direct": [rnd(100, p99=3.0)], "mesh": [rnd(97, p99=3.5)]}
    mesh = _rounds.summary(runs)["mesh"]
    assert mesh["ratio"] == pytest.approx(0.97) and mesh["p99_ms"] == 3.5
    assert math.isnan(mesh["cpu_ratio"]) and math.isnan(mesh["client_cpu_us"])


def test_rounds_of_unequal_length_are_refused():
    with pytest.raises(ValueError):
        _rounds.summary({"direct": [rnd(100), rnd(100)], "mesh": [rnd(90)]})


def test_the_report_prints_every_round_and_names_the_client(capsys: pytest.CaptureFixture[str]):
    runs = {"direct": [rnd(100, 40, 20), rnd(120, 40, 20)], "mesh": [rnd(95, 42, 21), rnd(60, 42, 21)]}
    _rounds.print_rounds(runs)
    _rounds.print_table(_rounds.summary(runs))
    out = capsys.readouterr().out
    assert "0.950" in out and "0.500" in out, "both rounds' ratios are shown, the disturbed one too"
    assert "Python asyncio client" in _rounds.client_line(runs, 32, 3, 2)
    assert "wrk" in _rounds.client_line({"direct": [{**rnd(1), "tool": "wrk"}]}, 32, 3, 1)


WRK_OUT = """Running 1s test @ http://127.0.0.1:8080/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   142.31us   88.20us   2.10ms   75.50%
    Req/Sec    25.12k     1.50k   27.00k    70.00%
  Latency Distribution
     50%  120.00us
     75%  160.00us
     90%  210.00us
     99%    1.02ms
  25310 requests in 1.00s, 2.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  25310.00
Transfer/sec:      2.10MB
"""


def test_wrk_percentiles_come_from_the_latency_distribution_not_the_stdev_column():
    assert parse_wrk(WRK_OUT) == {"requests": 25310, "errors": 3, "p50_ms": 0.12, "p99_ms": 1.02}
