import pytest

from shop_loadtest.scenario.units import (
    format_duration,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("1m30s", 90.0), ("400ms", 0.4), ("2h", 7200.0), ("1.5s", 1.5), (12, 12.0),
     ("0s", 0.0), ("1h2m3s", 3723.0), ("1d", 86400.0), ("45", 45.0)],
)
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-5s", "1x", "", "s", "1m30", True, -1])
def test_bad_durations_are_rejected(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_percent_rate_and_size_units():
    assert parse_percent("1%") == pytest.approx(0.01)
    assert parse_percent("0.5%") == pytest.approx(0.005)
    assert parse_rate("150/s") == 150.0
    assert parse_rate("9000/m") == 150.0
    assert parse_rate("20rps") == 20.0
    assert parse_size("2MB") == 2e6
    assert parse_size("1KiB") == 1024
    with pytest.raises(ValueError):
        parse_percent("1")
    with pytest.raises(ValueError):
        parse_size("2 parsecs")


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (90, "1m30s"), (0.4, "400ms")])
def test_durations_format_back(seconds, text):
    assert format_duration(seconds) == text
