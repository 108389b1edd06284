"""The fan-in decision as a pure function of the state (no AWS)."""

from __future__ import annotations

from lakegov.products.fanin import epoch_of, evaluate, normalise_time, schedule_due

A, B = "db:stg.a", "db:stg.b"
NOW = epoch_of("2026-11-18T12:00:00.000000Z")


def t(hhmm: str) -> str:
    return f"2026-11-18T{hhmm}:00.000000Z"


def test_times_are_normalised_so_text_order_is_time_order():
    assert normalise_time("2026-11-18T10:00:00Z") == "2026-11-18T10:00:00.000000Z"
    assert normalise_time("2026-11-18T12:00:00+02:00") == "2026-11-18T10:00:00.000000Z"
    assert normalise_time("2026-11-18T10:00:00.5") == "2026-11-18T10:00:00.500000Z"


def test_all_waits_for_every_dependency_and_any_for_one():
    state = {f"ref#{A}": t("10:00")}
    assert not evaluate([A, B], state, now=NOW).ready
    assert evaluate([A, B], state, policy="any", now=NOW).ready
    state[f"ref#{B}"] = t("10:01")
    ready = evaluate([A, B], state, now=NOW)
    assert ready.ready and ready.snapshot == {A: t("10:00"), B: t("10:01")}


def test_refreshes_consumed_by_the_last_success_do_not_count():
    state = {
        f"ref#{A}": t("10:00"),
        f"ref#{B}": t("11:00"),
        "success_snapshot": {A: t("10:00"), B: t("10:30")},
    }
    result = evaluate([A, B], state, now=NOW)
    assert not result.ready and result.waiting_for == (A,)
    assert evaluate([A, B], state, policy="any", now=NOW).ready


def test_a_run_in_progress_blocks_until_its_start_lease_expires():
    state = {f"ref#{A}": t("10:00"), "phase": "running", "current_run": "r1"}
    assert evaluate([A], state, now=NOW).reason == "run r1 is running"
    starting = {**state, "phase": "starting", "lease_until": NOW + 10}
    assert not evaluate([A], starting, now=NOW).ready
    assert evaluate([A], {**starting, "lease_until": NOW - 1}, now=NOW).ready


def test_max_age():
    state = {f"ref#{A}": t("09:00"), f"ref#{B}": t("11:30")}
    assert not evaluate([A, B], state, max_age_s=3600, now=NOW).ready
    assert evaluate([A, B], state, max_age_s=3 * 3600, now=NOW).ready
    assert evaluate([A, B], state, policy="any", max_age_s=3600, now=NOW).fresh == (B,)


def test_after_a_final_failure_only_a_newer_refresh_restarts():
    state = {
        f"ref#{A}": t("10:00"),
        f"ref#{B}": t("10:00"),
        "failed_snapshot": {A: t("10:00"), B: t("10:00")},
        "last_run": "r1",
    }
    blocked = evaluate([A, B], state, now=NOW)
    assert not blocked.ready and "r1 failed" in blocked.reason
    state[f"ref#{B}"] = t("11:00")
    assert evaluate([A, B], state, now=NOW).ready


def test_schedule_fallback():
    assert schedule_due({}, 3600, NOW)
    assert not schedule_due({"last_started_at": t("11:30")}, 3600, NOW)
    assert schedule_due({"last_started_at": t("10:30")}, 3600, NOW)
    assert not schedule_due({"phase": "running"}, 3600, NOW)
    assert not schedule_due({}, None, NOW)
