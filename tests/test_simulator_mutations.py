"""Mutations, POST endpoints and the control API change what the simulator serves, visibly and at once."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import pytest
import requests

from illuminate_sync.simulator import Simulator, SimulatorConfig
from illuminate_sync.simulator import calendar as cal
from illuminate_sync.simulator.server import is_loopback
from illuminate_sync.simulator.testing import api_url, get, oauth1

TODAY = dt.date(2026, 11, 27)
YEAR = {"start_date": "2026-08-01", "end_date": "2027-07-31"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(students=200, seed=8, today=TODAY)) as s:
        yield s


def test_add_students_enrolls_them_with_rosters_contacts_and_attendance(sim: Simulator) -> None:
    before = len(sim.query("Students", {}))
    out = sim.mutate("add_students", count=3)
    ids = set(out["student_ids"])
    assert len(ids) == 3 and len(sim.query("Students", {})) == before + 3
    assert ids <= {r["student_id"] for r in sim.query("Roster", {})}
    assert ids <= {int(c["student_id"]) for c in sim.query("StudentContacts", {})}
    day = out["entry_date"]
    assert ids <= {int(r["illuminate_student_id"]) for r in sim.query("Attendance/Daily", {"date": day})}


def test_change_assessment_result_rescores_and_stamps_modified_now(sim: Simulator) -> None:
    now = sim.district.now() - dt.timedelta(seconds=5)  # the server's wall clock, in its zone
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    assert sim.query("AssessmentAggregateStudentResponses", {"modified_after": stamp}) == []
    before = {
        (r["assessment_id"], r["local_student_id"], r["date_taken"]): r
        for r in sim.query("AssessmentAggregateStudentResponses", {})
    }
    out = sim.mutate("change_assessment_result", count=2)
    changed = sim.query("AssessmentAggregateStudentResponses", {"modified_after": stamp})
    keys = {(r["assessment_id"], r["local_student_id"], r["date_taken"]) for r in changed}
    assert keys == {(str(a), s, d) for a, s, d in out["keys"]}
    assert all(
        before[k]["points"] != r["points"]
        for k, r in zip(
            sorted(keys), sorted(changed, key=lambda r: (r["assessment_id"], r["local_student_id"], r["date_taken"]))
        )
    )
    groups = sim.query(
        "AssessmentAggregateStudentResponsesGroup", {"modified_after": stamp, "date_taken_start": "2025-08-01"}
    )
    assert {(g["assessment_id"], g["local_student_id"], g["date_taken"]) for g in groups} == keys


def test_delete_assessment_result_removes_the_row(sim: Simulator) -> None:
    out = sim.mutate("delete_assessment_result", assessment_id=1001)
    a, s, d = out["key"]
    rows = sim.query("AssessmentAggregateStudentResponses", {"assessment_id": str(a)})
    assert (s, d) not in {(r["local_student_id"], r["date_taken"]) for r in rows}


def test_update_assessment_changes_updated_at_and_the_view(sim: Simulator) -> None:
    out = sim.mutate("update_assessment", assessment_id=1002, title="Renamed")
    listed = next(a for a in sim.query("Assessments", {}) if int(a["assessment_id"]) == 1002)
    assert listed["title"] == "Renamed" and listed["updated_at"] == out["updated_at"]
    assert sim.query("Assessment/1002/View", {})[0]["assessment"]["title"] == "Renamed"


def test_delete_enrollment_removes_the_span_and_its_rosters(sim: Simulator) -> None:
    student = sim.query("Enrollment", {})[0]["student_id"]
    out = sim.mutate("delete_enrollment", student_id=student, academic_year=2027)
    assert out["removed"] and out["rosters_removed"] > 0
    assert student not in {r["student_id"] for r in sim.query("Enrollment", YEAR)}
    assert student not in {r["student_id"] for r in sim.query("Roster", YEAR)}


def test_withdraw_student_ends_enrollment_and_rosters(sim: Simulator) -> None:
    student = sim.query("Enrollment", {})[0]["student_id"]
    out = sim.mutate("withdraw_student", student_id=student, date="2026-11-20")
    assert out["leave_date"] == "2026-11-20"
    assert student not in {r["student_id"] for r in sim.query("Students", {})}
    spans = [r for r in sim.query("Roster", YEAR) if r["student_id"] == student]
    assert spans and all(r["leave_date"] <= "2026-11-20" for r in spans)


def test_correct_attendance_overrides_a_past_day(sim: Simulator) -> None:
    day = "2026-11-02"
    row = next(r for r in sim.query("Attendance/Daily", {"date": day}) if r["flag_code"] == "+")
    out = sim.mutate("correct_attendance", student_id=int(row["illuminate_student_id"]), date=day, flag_code="E")
    assert out["old_flag"] == "+" and out["new_flag"] == "E"
    fixed = next(
        r
        for r in sim.query("Attendance/Daily", {"date": day})
        if r["illuminate_student_id"] == row["illuminate_student_id"]
    )
    assert fixed["flag_code"] == "E" and fixed["flag_title"] == "Excused Absence"


def test_empty_slice_removes_a_years_records(sim: Simulator) -> None:
    sites = [s.site_id for s in sim.district.sites.values() if s.level != "district"]

    def behavior() -> list[dict]:
        return [
            r
            for s in sites
            for r in sim.query(
                "Behavior", {"site_id": s, "enrollment_start_date": "2026-08-01", "enrollment_end_date": "2027-07-31"}
            )
        ]

    assert behavior()
    out = sim.mutate("empty_slice", path="Behavior", academic_year=2027)
    assert out["removed"] > 0 and behavior() == []
    sim.mutate("empty_slice", path="GradebookScores", academic_year=2027)
    assert sim.query("GradebookScores", {}) == []
    with pytest.raises(ValueError):
        sim.mutate("empty_slice", path="Sites", academic_year=2027)


def test_advance_today_makes_the_next_day_of_attendance_appear(sim: Simulator) -> None:
    next_day = next(d for d in cal.instructional_days(2027) if d > TODAY)
    assert sim.query("Attendance/Daily", {"date": next_day.isoformat()}) == []
    sim.advance_today((next_day - TODAY).days)
    assert sim.config.today == next_day
    assert sim.query("Attendance/Daily", {"date": next_day.isoformat()})


def test_unknown_mutation_is_an_error(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.mutate("explode")


def test_posted_scores_are_scored_against_the_answer_key_and_appear_in_the_aggregates(sim: Simulator) -> None:
    d = sim.district
    assessment = d.assessments[1001]
    student = next(e.student for e in d.enrollments if e.academic_year == 2027 and e.active_on(TODAY))
    key = [("3" if f.is_rubric else f.key[1]) for f in assessment.fields]
    payload = [
        {"local_student_id": int(student.local_id), "responses": key, "date_taken": "2026-11-24"},
        {"local_student_id": 999, "responses": key},
    ]
    response = requests.post(api_url(sim, "Assessment/1001/Scores"), json=payload, auth=oauth1(sim), timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["students_count"] == 1 and body["rejected_responses_count"] == 1
    assert body["rejected_responses_details"] == [payload[1]]
    rows = sim.query(
        "AssessmentAggregateStudentResponses",
        {"assessment_id": "1001", "local_student_id": student.local_id, "date_taken_start": "2026-11-24"},
    )
    assert len(rows) == 1 and rows[0]["percent_correct"] == "100.00" and rows[0]["mastered"] == "t"
    server_today = sim.district.now().date().isoformat()  # the server's date, in its zone
    recent = sim.query("AssessmentAggregateStudentResponses", {"modified_after": server_today})
    assert student.local_id in {r["local_student_id"] for r in recent}
    by_local = requests.post(
        api_url(sim, f"Assessment/local_assessment_id/{assessment.local_assessment_id}/Scores"),
        json=payload[:1],
        auth=oauth1(sim),
        timeout=10,
    )
    assert by_local.json()["responses_count"] == 1
    assert (
        requests.post(api_url(sim, "Assessment/424242/Scores"), json=payload, auth=oauth1(sim), timeout=10).status_code
        == 404
    )


def test_repository_data_is_stored(sim: Simulator) -> None:
    repo = sim.district.repositories[1]
    rows = [{"student_id": 1, "field_score": "3.5"}]
    response = requests.post(api_url(sim, "Repository/1/Data"), json=rows, auth=oauth1(sim), timeout=10)
    assert response.json() == {"success": True}
    response = requests.post(
        api_url(sim, f"Repository/local_repository_id/{repo.local_repository_id}/Data"),
        json=rows,
        auth=oauth1(sim),
        timeout=10,
    )
    assert response.status_code == 200 and repo.rows == rows * 2


def test_control_api_over_http(sim: Simulator) -> None:
    control = f"http://127.0.0.1:{sim.port}/_control"
    get(sim, "Sites")
    assert requests.get(f"{control}/requests", timeout=10).json() == {"Sites": 1}
    assert requests.post(f"{control}/requests/reset", timeout=10).ok and sim.request_counts() == {}
    assert requests.post(f"{control}/faults", json={"path": "Sites", "kind": "503", "count": 1}, timeout=10).ok
    assert get(sim, "Sites").status_code == 503 and get(sim, "Sites").status_code == 200
    requests.post(f"{control}/faults", json={"path": "Sites", "kind": "500"}, timeout=10)
    assert requests.delete(f"{control}/faults", timeout=10).ok and get(sim, "Sites").status_code == 200
    out = requests.post(f"{control}/mutate", json={"action": "add_students", "count": 2}, timeout=10).json()
    assert len(out["student_ids"]) == 2
    bad = requests.post(f"{control}/mutate", json={"action": "nope"}, timeout=10)
    assert bad.status_code == 400
    today = requests.post(f"{control}/advance_today", json={"days": 3}, timeout=10).json()["today"]
    assert today == (TODAY + dt.timedelta(days=3)).isoformat() == sim.today.isoformat()


def test_only_loopback_addresses_count_as_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("10.1.2.3") and not is_loopback("192.168.0.9") and not is_loopback("garbage")


def test_control_api_refuses_non_loopback_clients() -> None:
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        pytest.skip("no resolvable host address")
    if address.startswith("127."):
        pytest.skip("the host name resolves to loopback only")
    sim = Simulator(students=13, seed=1, today=TODAY).start(host="0.0.0.0")
    try:
        response = requests.get(f"http://{address}:{sim.port}/_control/requests", timeout=10)
        assert response.status_code == 403
    finally:
        sim.stop()


def test_the_servers_clock_keeps_its_zone_in_stamps_and_in_modified_after() -> None:
    """Honolulu is 10 hours behind UTC all year: a change is stamped in Honolulu time, and a `modified_after` with an
    offset is read as that instant on the server's clock."""
    honolulu = Simulator(SimulatorConfig(students=20, seed=2, timezone="Pacific/Honolulu"))
    utc_now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    stamp = dt.datetime.fromisoformat(honolulu.mutate("change_assessment_result", count=1)["modified_at"])
    assert abs(stamp - (utc_now - dt.timedelta(hours=10))) < dt.timedelta(minutes=1)
    just_before = (utc_now - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert len(honolulu.query("AssessmentAggregateStudentResponses", {"modified_after": just_before})) == 1
