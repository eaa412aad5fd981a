"""The scheduler's order (compute/scheduler.py), on a fake clock: admission control, fair share
between owners and between one owner's jobs, priorities with aging, the interactive lane, fifo."""

import pytest

from compute.scheduler import Dispatcher, default_budget


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Harness:
    """A dispatcher whose launches are recorded as (job id, chunk index, lane)."""

    def __init__(self, capacity=2, **options):
        self.clock = Clock()
        self.capacity = capacity
        self.launched: list[tuple[str, int, bool]] = []
        self.started: list[str] = []
        self.d = Dispatcher(lambda: self.capacity, clock=self.clock, on_start=self.started.append, **options)

    def add(self, job_id, owner, chunks, priority="normal", lane=False):
        def launcher(index):
            return lambda on_lane: self.launched.append((job_id, index, on_lane))
        self.d.add(job_id, owner, priority, [launcher(i) for i in range(chunks)], lane=lane)

    def finish_oldest(self, n=1):
        """The n oldest running regular chunks end."""
        running = [item for item in self.launched if not item[2] and item not in self.ended]
        for job_id, index, lane in running[:n]:
            self.ended.append((job_id, index, lane))
            self.d.ended(job_id, lane)

    ended: list


@pytest.fixture
def h():
    harness = Harness()
    harness.ended = []
    return harness


def jobs_of(launches):
    return [job_id for job_id, _, _ in launches]


def test_admission_control_keeps_at_most_capacity_in_flight(h):
    h.add("a", "alice", 10)
    assert jobs_of(h.launched) == ["a", "a"] and h.d.inflight == 2
    assert h.d.queued() == {"high": 0, "normal": 8, "low": 0}
    h.finish_oldest()
    assert len(h.launched) == 3 and h.d.inflight == 2
    h.capacity = 5  # the cluster grew
    h.d.pump()
    assert h.d.inflight == 5 and len(h.launched) == 6
    assert [index for _, index, _ in h.launched] == [0, 1, 2, 3, 4, 5]  # a job's chunks in order


def test_a_newcomer_gets_the_next_slot_not_the_end_of_the_queue(h):
    h.add("huge", "alice", 1000)
    for _ in range(50):
        h.finish_oldest()
    h.add("small", "bob", 2)
    h.finish_oldest()
    assert h.launched[-1][0] == "small"  # at once, though alice has 948 chunks waiting
    h.finish_oldest()
    assert h.launched[-1][0] == "huge"  # then they alternate
    h.finish_oldest()
    assert h.launched[-1][0] == "small"
    assert h.started == ["huge", "small"]


def test_two_owners_share_slots_evenly_whatever_their_job_counts(h):
    for i in range(4):
        h.add(f"a{i}", "alice", 100)
    h.add("b", "bob", 100)
    for _ in range(200):
        h.finish_oldest()
    owners = ["bob" if job == "b" else "alice" for job in jobs_of(h.launched[2:])]
    assert abs(owners.count("alice") - owners.count("bob")) <= 2
    # and alice's four jobs share her half evenly
    alice = [job for job in jobs_of(h.launched[2:]) if job != "b"]
    assert max(alice.count(f"a{i}") for i in range(4)) - min(alice.count(f"a{i}") for i in range(4)) <= 2


def test_an_owner_banks_no_credit_while_idle(h):
    h.add("a", "alice", 100)
    h.add("b1", "bob", 1)
    for _ in range(40):
        h.finish_oldest()  # bob's one chunk ran long ago; alice had the rest
    h.add("b2", "bob", 30)
    for _ in range(20):
        h.finish_oldest()
    recent = jobs_of(h.launched[-20:])
    assert 8 <= recent.count("b2") <= 12  # shared from now on, not 40 slots in a row to catch up


def test_higher_priority_takes_free_slots_first(h):
    h.add("low", "alice", 10, "low")
    h.add("normal", "bob", 10, "normal")
    h.add("high", "carol", 3, "high")
    assert jobs_of(h.launched) == ["low", "low"]  # it was alone when it came
    h.finish_oldest(2)
    assert jobs_of(h.launched[2:]) == ["high", "high"]
    h.finish_oldest(2)
    assert jobs_of(h.launched[4:]) == ["high", "normal"]


def test_low_priority_ages_and_never_starves(h):
    h.add("low", "alice", 5, "low")
    h.finish_oldest(2)
    for i in range(30):  # high work keeps arriving
        h.add(f"high{i}", f"user{i}", 2, "high")
        h.clock.now += 1
        h.finish_oldest(2)
    lows = [i for i, (job, _, _) in enumerate(h.launched) if job == "low"]
    assert len(lows) >= 4  # 2 at the start, then at least one per two aging periods of 10 s
    assert h.d.positions() == {}  # everything that waits has started


def test_positions_and_what_waits(h):
    h.add("a", "alice", 4)
    h.add("b", "bob", 3)
    h.add("c", "carol", 1, "high")
    assert h.d.positions() == {"b": (2, 3), "c": (1, 0)}  # a runs; c (high) is next; b behind c and a's 2 waiting
    assert h.d.queued() == {"high": 1, "normal": 5, "low": 0}


def test_drop_forgets_waiting_chunks_but_slots_stay_busy_until_they_end(h):
    h.add("a", "alice", 10)
    assert h.d.drop("a") == 8
    assert h.d.inflight == 2 and h.d.queued()["normal"] == 0
    h.add("b", "bob", 3)
    assert jobs_of(h.launched) == ["a", "a"]  # the cancelled job's running chunks still hold the slots
    h.finish_oldest()
    assert jobs_of(h.launched) == ["a", "a", "b"]
    assert h.d.drop("gone") == 0


def test_the_interactive_lane_takes_high_chunks_that_may_use_it(h):
    lane = Harness(capacity=2, lane_slots=1)
    lane.ended = []
    lane.add("big", "alice", 10)
    lane.add("demo", "demo", 2, "high", lane=True)
    assert lane.launched[-1] == ("demo", 0, True)  # no regular slot free: the lane took it
    lane.d.ended("demo", True)
    assert lane.launched[-1] == ("demo", 1, True)
    lane.add("gpu", "carol", 1, "high", lane=False)  # not allowed on the lane: waits for a slot
    assert lane.launched[-1][0] == "demo" and lane.d.lane_inflight == 1
    lane.add("normal", "dave", 1, "normal", lane=True)  # the lane is for high priority only
    lane.d.ended("demo", True)
    assert lane.d.lane_inflight == 0
    lane.finish_oldest()
    assert lane.launched[-1] == ("gpu", 0, False)


def test_a_lane_job_takes_a_regular_slot_only_while_a_cpu_is_idle():
    # 2 CPUs, 6 slots: 4 regular chunks in flight would be 2 running and 2 waiting in Ray's queue
    h = Harness(capacity=6, lane_slots=2, cpus=lambda: 2)
    h.ended = []
    h.add("demo", "demo", 3, "high", lane=True)
    assert h.launched == [("demo", 0, True), ("demo", 1, True), ("demo", 2, False)]  # idle: a CPU at once
    h.d.ended("demo", True), h.d.ended("demo", True), h.finish_oldest()
    h.add("big", "alice", 20)
    assert h.d.inflight == 6
    h.add("demo2", "demo", 4, "high", lane=True)
    assert [x for x in h.launched if x[0] == "demo2"] == [("demo2", 0, True), ("demo2", 1, True)]
    h.finish_oldest()  # a big chunk ends: its slot goes to the big job, not behind it in Ray's queue
    assert h.launched[-1][0] == "big" and h.d.queued()["high"] == 2
    h.d.ended("demo2", True)
    assert h.launched[-1] == ("demo2", 2, True)
    h.d.drop("big")
    h.finish_oldest(5)  # the CPUs go idle: the lane job's last chunk takes a regular slot
    assert h.launched[-1] == ("demo2", 3, False)


def test_fifo_puts_everything_into_ray_in_arrival_order():
    h = Harness(capacity=2, policy="fifo", lane_slots=3)
    h.add("first", "alice", 3, "low")
    h.add("second", "bob", 2, "high", lane=True)
    assert jobs_of(h.launched) == ["first"] * 3 + ["second"] * 2  # no bound, no lane, no priority
    assert not any(lane for _, _, lane in h.launched)


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown scheduler policy"):
        Dispatcher(lambda: 1, policy="lottery")


def test_the_default_budget_keeps_about_a_tenth_of_a_second_queued_per_cpu():
    assert default_budget(4, [0.001]) == 4 * 33  # tiny chunks: many in flight to hide the round trip
    assert default_budget(4, [0.001, 1.0]) == 8  # the longest-chunked job decides: 1 queued per CPU
    assert default_budget(16, [0.04]) == 16 * 4
    assert default_budget(4, [0.001, None]) == 16  # a job not measured yet: at most 3 queued per CPU
    assert default_budget(4, []) == 16
    assert default_budget(1, [5.0]) == 4 and default_budget(0, [0.001]) == 4  # the floor (autoscaler demand)
    assert default_budget(2, [5.0]) == 4 and default_budget(6.5, [2.0]) == 13  # fractional CPUs
