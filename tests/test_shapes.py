import math
import random

import pytest

from shop_loadtest import shapes
from shop_loadtest.shapes import Profile, arrival_times

K6 = Profile.from_stages([("up", 10, 10.0), ("hold", 10, 10.0), ("jump", 0, 30.0),
                          ("high", 10, 30.0), ("down", 10, 0.0)])


@pytest.mark.parametrize(
    ("t", "value", "stage"),
    [(0, 0.0, "up"), (5, 5.0, "up"), (10, 10.0, "hold"), (19.9, 10.0, "hold"), (20, 30.0, "high"),
     (35, 15.0, "down"), (40, 0.0, None), (-1, 0.0, None)],
)
def test_stages_move_linearly_from_the_previous_target(t, value, stage):
    assert K6.value(t) == pytest.approx(value)
    assert K6.stage_at(t) == stage


def test_duration_peak_and_speedup():
    assert K6.duration == 40
    assert K6.peak() == 30
    fast = K6.scaled(10)
    assert fast.duration == pytest.approx(4.0)
    assert fast.value(0.5) == pytest.approx(K6.value(5))


def test_cumulative_is_the_integral_and_time_at_inverts_it():
    # up: 0->10 over 10s = 50; hold 10s = 100; high 10s = 300; down 30->0 over 10s = 150
    assert K6.cumulative(10) == pytest.approx(50)
    assert K6.total() == pytest.approx(600)
    for area in (0.5, 1, 49.9, 50, 120, 150, 449, 599.9):
        t = K6.time_at(area)
        assert t is not None
        assert K6.cumulative(t) == pytest.approx(area, rel=1e-9, abs=1e-9)
    assert K6.time_at(600.1) is None


def test_decreasing_ramp_inverse_is_exact():
    p = Profile.from_stages([("start", 0, 100.0), ("down", 10, 0.0)])
    assert p.time_at(500) == pytest.approx(10.0)
    assert p.time_at(375) == pytest.approx(5.0)  # 100*5 - 5*5^2 = 375


def test_flash_sale_template_expands_to_stages():
    stages = shapes.flash_sale(baseline=10, peak=80, ramp=120, hold=300, decay=300)
    p = Profile.from_stages(stages)
    assert p.value(30) == 10
    assert p.value(60 + 60) == pytest.approx(45)
    assert p.value(60 + 120 + 150) == 80
    assert p.stage_at(60 + 120 + 300 + 10) == "decay"
    assert p.duration == 60 + 120 + 300 + 300 + 60


def test_email_blast_decays_by_half_each_half_life():
    p = Profile.from_stages(shapes.email_blast(baseline=10, peak=90, send_at=60, rise=60,
                                               half_life=600, duration=3600))
    assert p.value(30) == 10
    assert p.value(120) == pytest.approx(90)
    assert p.value(120 + 600) == pytest.approx(10 + 40)
    assert p.value(120 + 1200) == pytest.approx(10 + 20)


def test_step_spike_soak_wave_and_replay():
    steps = Profile.from_stages(shapes.step_load(start=10, step=10, every=60, until=30))
    assert [steps.value(t) for t in (1, 61, 121)] == [10, 20, 30]
    assert steps.duration == 180
    spike = Profile.from_stages(shapes.spike(baseline=5, peak=50, at=60, rise=10, hold=30,
                                             after=60))
    assert spike.value(75) == 50
    soak = Profile.from_stages(shapes.soak(target=20, ramp=60, duration=3600))
    assert soak.value(1800) == 20
    wave = Profile.from_stages(shapes.wave(low=10, high=50, period=86400, duration=86400))
    assert wave.value(0) == pytest.approx(10)
    assert wave.value(43200) == pytest.approx(50)
    replay = Profile.from_stages(shapes.replay_points([60, 120, 60], step=60, multiplier=3))
    assert replay.value(60) == pytest.approx(360)
    assert replay.duration == 120


def test_replay_csv_reads_a_column(tmp_path):
    path = tmp_path / "bf.csv"
    path.write_text("minute,visitors\n2025-11-28T00:00,600\n2025-11-28T00:01,1200\n")
    assert shapes.read_replay_csv(path, "visitors") == [600.0, 1200.0]
    with pytest.raises(ValueError, match="no column 'orders'"):
        shapes.read_replay_csv(path, "orders")


def test_even_arrivals_split_across_processes_interleave_exactly():
    p = Profile.from_stages([("hold", 0, 100.0), ("hold", 2, 100.0)])
    one = list(arrival_times(p, index=0, count=1, mode="even", rng=random.Random(1)))
    parts = [list(arrival_times(p, index=i, count=3, mode="even", rng=random.Random(1)))
             for i in range(3)]
    assert len(one) == 200
    assert sorted(t for part in parts for t in part) == pytest.approx(one)
    gaps = {round(b - a, 9) for a, b in zip(one, one[1:], strict=False)}
    assert gaps == {0.01}


def test_poisson_arrivals_have_the_target_mean():
    p = Profile.from_stages([("hold", 0, 200.0), ("hold", 50, 200.0)])
    times = list(arrival_times(p, index=0, count=2, mode="poisson", rng=random.Random(7)))
    # one of two processes: half of 10,000 expected; Poisson sd = sqrt(5000) ~ 71
    assert abs(len(times) - 5000) < 4 * math.sqrt(5000)
    assert times == sorted(times)
