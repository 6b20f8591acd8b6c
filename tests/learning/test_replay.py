"""Tests of the per-env trajectory replay."""

import copy
import io

import torch

from isaacgymenvs_ddiffpg.learning.replay import TrajectoryReplay

NUM_ENVS, OBS_DIM, ACT_DIM, SLOTS = 3, 3, 2, 4


def make_buffer(memory_size: int = 6, max_len: int = 8) -> TrajectoryReplay:
    return TrajectoryReplay(NUM_ENVS, memory_size, max_len, OBS_DIM, ACT_DIM, SLOTS)


class MarkerEnv:
    """Envs whose obs is (env, episode, t); episode i of env n lasts ``lengths[n][i]`` steps.

    The final observation carries t + 100, the reset observation t = 0 of the next episode, so
    storing the wrong one is visible.
    """

    def __init__(self, lengths: list[list[int]]) -> None:
        self.lengths = lengths
        self.succeed = {0, 1}  # envs whose episodes end at a goal (goal id = env + 1)
        self.episode = [0] * len(lengths)
        self.t = [0] * len(lengths)

    def obs(self) -> torch.Tensor:
        rows = [[n, self.episode[n], self.t[n]] for n in range(len(self.lengths))]
        return torch.tensor(rows, dtype=torch.float32)

    def step(self, buffer: TrajectoryReplay, explorer: torch.Tensor | None = None) -> None:
        obs = self.obs()
        done, success, final = [], [], []
        for n in range(len(self.lengths)):
            self.t[n] += 1
            ends = self.t[n] == self.lengths[n][self.episode[n] % len(self.lengths[n])]
            done.append(ends)
            success.append(n + 1 if ends and n in self.succeed else 0)
            final.append([n, self.episode[n], 100 + self.t[n]])
            if ends:
                self.episode[n] += 1
                self.t[n] = 0
        done_t = torch.tensor(done)
        next_obs = torch.where(
            done_t[:, None], torch.tensor(final, dtype=torch.float32), self.obs()
        )
        action = obs[:, 1:] * 0.01
        success_t = torch.tensor(success)
        buffer.add(obs, action, obs[:, 2], next_obs, done_t, done_t, success_t, None, explorer)


def fill(buffer: TrajectoryReplay, env: MarkerEnv, steps: int) -> None:
    for _ in range(steps):
        env.step(buffer)


def traj_ids(batch: dict) -> torch.Tensor:
    return (batch["obs"][..., 0] + NUM_ENVS * batch["obs"][..., 1]).long()


def test_next_obs_is_final_obs_at_episode_end_and_obs_t_plus_1_inside() -> None:
    buffer, env = make_buffer(), MarkerEnv([[3], [4], [5]])
    fill(buffer, env, 12)
    done = buffer.completed(feature_dim=OBS_DIM)
    for path, length in zip(done["paths"], done["lengths"], strict=True):
        assert path[length, 2] == 100 + length
        assert torch.equal(path[:length, 2], torch.arange(length, dtype=torch.float32))
    batch = buffer.sample(256, 1, torch.Generator().manual_seed(0))
    last = batch["next_obs"][..., 2] >= 100
    assert last.any() and (~last).any()
    assert torch.equal(batch["terminated"], last)
    assert torch.equal(batch["next_obs"][last][:, 2], batch["obs"][last][:, 2] + 101)
    inner = batch["next_obs"][~last] - batch["obs"][~last]
    assert torch.equal(inner, torch.tensor([0.0, 0.0, 1.0]).expand_as(inner))


def test_ids_are_unique_and_encode_env_and_episode() -> None:
    buffer, env = make_buffer(memory_size=30), MarkerEnv([[2], [3], [2, 4]])
    fill(buffer, env, 9)
    done = buffer.completed(feature_dim=OBS_DIM)
    ids = done["ids"]
    assert len(ids) == len(torch.unique(ids)) >= 8
    assert torch.equal(ids, (done["paths"][:, 0, 0] + NUM_ENVS * done["paths"][:, 0, 1]).long())
    assert torch.equal(done["success"], torch.where(ids % NUM_ENVS == 2, 0, ids % NUM_ENVS + 1))


def test_ring_overwrites_the_oldest_trajectory_of_each_env() -> None:
    buffer, env = make_buffer(memory_size=6), MarkerEnv([[2], [2], [2]])
    assert buffer.slots_per_env == 2 and buffer.capacity == 6
    fill(buffer, env, 7)  # three finished episodes per env, a fourth running
    ids = buffer.completed(feature_dim=1)["ids"]
    # two slots per env: the running episode 3 overwrote episode 1, episode 2 stays
    assert ids.tolist() == [2 * NUM_ENVS + n for n in range(NUM_ENVS)]
    assert torch.equal(buffer.obs[:, 1, 0, 1], torch.full((NUM_ENVS,), 3.0))


def test_reused_slot_drops_its_old_group_label() -> None:
    buffer, env = make_buffer(memory_size=6), MarkerEnv([[2], [9], [9]])
    fill(buffer, env, 3)  # env 0: episode 0 done in slot 0; env 1: episode 0 running
    buffer.set_groups(torch.tensor([0, 1]), torch.tensor([1, 1]))
    fill(buffer, env, 2)  # env 0: episode 2 now runs in slot 0, over trajectory 0
    batch = buffer.sample(256, 2, torch.Generator().manual_seed(0))
    assert set(traj_ids(batch)[1].tolist()) == {1}


def test_new_routes_are_flagged_in_samples_and_dropped_with_a_reused_slot() -> None:
    buffer, env = make_buffer(memory_size=6), MarkerEnv([[2], [9], [9]])
    fill(buffer, env, 3)  # env 0: episode 0 done in slot 0, episode 1 running
    buffer.set_new_routes(torch.tensor([0, 99]))  # 99 is not stored: ignored
    batch = buffer.sample(256, 1, torch.Generator().manual_seed(0))
    ids = traj_ids(batch)
    assert torch.equal(batch["new_route"], ids == 0) and (ids == 0).any()
    fill(buffer, env, 2)  # env 0: episode 2 now runs in slot 0, over trajectory 0
    batch = buffer.sample(256, 1, torch.Generator().manual_seed(0))
    assert not batch["new_route"].any()
    state = {k: v for k, v in buffer.state_dict().items() if k != "new_route"}
    older = make_buffer(memory_size=6)
    older.new_route.fill_(True)
    older.load_state_dict(state)  # a checkpoint from before the flag was kept
    assert not older.new_route.any()


def test_long_episode_is_split_at_max_length() -> None:
    buffer, env = make_buffer(max_len=4), MarkerEnv([[6], [6], [6]])
    fill(buffer, env, 5)
    done = buffer.completed(feature_dim=OBS_DIM)
    assert done["lengths"].tolist() == [4] * NUM_ENVS
    assert done["success"].tolist() == [0] * NUM_ENVS
    assert torch.equal(buffer.length[:, 1], torch.ones(NUM_ENVS, dtype=torch.long))


def test_groups_sample_only_their_trajectories_and_empty_groups_fall_back() -> None:
    buffer, env = make_buffer(memory_size=30), MarkerEnv([[2], [3], [4]])
    fill(buffer, env, 12)
    done = buffer.completed(feature_dim=1)
    group_one = done["ids"][done["ids"] % NUM_ENVS == 1]
    buffer.set_groups(group_one, torch.ones_like(group_one))
    batch = buffer.sample(512, 3, torch.Generator().manual_seed(1))
    assert batch["obs"].shape == (3, 512, OBS_DIM) and batch["indices"].shape == (3, 512)
    assert set(traj_ids(batch)[1].tolist()) == set(group_one.tolist())
    assert len(set(traj_ids(batch)[2].tolist())) > len(group_one)  # group 2 empty -> all data
    assert batch["has_data"].tolist() == [True, True, False]


def test_success_share_draws_a_modes_successes_first_and_flags_them() -> None:
    buffer, env = make_buffer(memory_size=30), MarkerEnv([[2], [3], [4]])
    fill(buffer, env, 12)  # envs 0 and 1 succeed, env 2 fails
    done = buffer.completed(feature_dim=1)
    mode = done["ids"][done["ids"] % NUM_ENVS != 0]  # env 1's successes, env 2's failures
    buffer.set_groups(mode, torch.ones_like(mode))
    plain = buffer.sample(400, 2, torch.Generator().manual_seed(3))
    mixed = buffer.sample(400, 2, torch.Generator().manual_seed(3), success_share=0.75)
    assert torch.equal(plain["success"][0], torch.ones(400, dtype=torch.bool))
    envs = traj_ids(mixed)[1] % NUM_ENVS
    assert (envs[:300] == 1).all()  # the successes first
    assert 0.25 < (envs[300:] == 1).float().mean() < 0.6  # then the group: 9 of 21 transitions
    assert torch.equal(mixed["success"][1], envs == 1)
    assert set(traj_ids(mixed)[0].tolist()) == set(traj_ids(plain)[0].tolist())
    zero = buffer.sample(400, 2, torch.Generator().manual_seed(3), success_share=0.0)
    assert torch.equal(zero["indices"], plain["indices"])  # share 0: the plain draws


def test_running_episodes_are_sampled_by_group_zero_only() -> None:
    buffer, env = make_buffer(memory_size=30, max_len=10), MarkerEnv([[2], [9], [9]])
    fill(buffer, env, 5)  # envs 1 and 2 are still in their first episode
    done = buffer.completed(feature_dim=1)
    buffer.set_groups(done["ids"], torch.ones_like(done["ids"]))
    batch = buffer.sample(600, 2, torch.Generator().manual_seed(2))
    running = {1, 2}
    assert running <= set(traj_ids(batch)[0].tolist())
    assert not running & set(traj_ids(batch)[1].tolist())
    share = (traj_ids(batch)[0] % NUM_ENVS != 0).float().mean()
    assert 0.55 < share < 0.8  # 10 of 15 stored transitions are running ones
    counts = torch.bincount(batch["indices"][0])
    assert (counts > 0).sum() == 15 and counts.max() < 2 * counts[counts > 0].min()


def test_target_actions_start_as_action_and_round_trip() -> None:
    buffer, env = make_buffer(memory_size=30), MarkerEnv([[3], [4], [5]])
    fill(buffer, env, 20)
    batch = buffer.sample(8, 3, torch.Generator().manual_seed(3))
    assert torch.equal(batch["target_action"], batch["action"])
    new = torch.rand(3, 8, ACT_DIM, generator=torch.Generator().manual_seed(4))
    buffer.write_target_actions(batch["indices"], new)
    again = buffer.sample(8, 3, torch.Generator().manual_seed(3))
    for group in range(3):
        index = batch["indices"][group]
        single = (index[:, None] == index[None, :]).sum(1) == 1  # duplicates keep one write
        assert single.sum() >= 4
        assert torch.equal(again["target_action"][group][single], new[group][single])
    untouched = buffer.target_action.flatten(1, 3)[3, batch["indices"][0]]
    assert torch.equal(untouched, buffer.action.flatten(0, 2)[batch["indices"][0]])


def test_remap_slots_moves_target_actions() -> None:
    buffer, env = make_buffer(), MarkerEnv([[3], [4], [5]])
    fill(buffer, env, 6)
    for slot in range(SLOTS):
        buffer.target_action[slot] = float(slot)
    buffer.remap_slots(torch.tensor([0, 2, 0]))
    values = buffer.target_action[:, 0, 0, 0, 0].tolist()
    assert values == [0.0, 2.0, 0.0, 3.0]


def test_evicted_trajectories_are_never_sampled_or_listed() -> None:
    buffer, env = make_buffer(memory_size=30), MarkerEnv([[2], [3], [4]])
    fill(buffer, env, 12)
    ids = buffer.completed(feature_dim=1)["ids"]
    gone = ids[ids % NUM_ENVS == 0]
    buffer.evict(gone)
    assert not set(gone.tolist()) & set(buffer.completed(feature_dim=1)["ids"].tolist())
    batch = buffer.sample(512, 1, torch.Generator().manual_seed(4))
    assert not set(gone.tolist()) & set(traj_ids(batch)[0].tolist())


def test_explore_own_draws_group_zero_from_the_exploring_envs_only() -> None:
    buffer, env = make_buffer(memory_size=30), MarkerEnv([[2], [3], [4]])
    for _ in range(12):  # env 1 explores, envs 0 and 2 exploit
        env.step(buffer, explorer=torch.tensor([False, True, False]))
    done = buffer.completed(feature_dim=1)
    buffer.set_groups(done["ids"], (done["ids"] % NUM_ENVS == 0).long())  # env 0: mode 1
    gen = torch.Generator().manual_seed(4)
    own = buffer.sample(300, 2, gen, explore_own=True)
    assert set((traj_ids(own)[0] % NUM_ENVS).tolist()) == {1}
    assert set((traj_ids(own)[1] % NUM_ENVS).tolist()) == {0}  # the modes draw as before
    every = buffer.sample(300, 2, gen)
    assert set((traj_ids(every)[0] % NUM_ENVS).tolist()) == {0, 1, 2}
    # without any exploring env's data group 0 draws from all, and still counts as having data
    none, env = make_buffer(memory_size=30), MarkerEnv([[2], [3], [4]])
    for _ in range(12):
        env.step(none, explorer=torch.zeros(NUM_ENVS, dtype=torch.bool))
    batch = none.sample(300, 1, gen, explore_own=True)
    assert set((traj_ids(batch)[0] % NUM_ENVS).tolist()) == {0, 1, 2}
    assert batch["has_data"].tolist() == [True]
    # a checkpoint from before the flag was kept: every trajectory is the first explorer's
    state = {k: v for k, v in buffer.state_dict().items() if k != "explorer"}
    restored = make_buffer(memory_size=30)
    restored.load_state_dict(state)
    assert restored.explorer.eq(1).all()
    # one that kept a bool flag per trajectory: true is the first explorer's, false a mode's
    restored.load_state_dict({**state, "explored": buffer.explorer.bool()})
    assert torch.equal(restored.explorer, buffer.explorer)


def test_explore_own_gives_each_exploration_group_its_own_envs_trajectories() -> None:
    buffer, env = make_buffer(memory_size=30), MarkerEnv([[2], [3], [4]])
    for _ in range(12):  # env 0 plays the first explorer, env 1 the second, env 2 a mode
        env.step(buffer, torch.tensor([1, 2, 0]))
    done = buffer.completed(feature_dim=1)
    buffer.set_groups(done["ids"], (done["ids"] % NUM_ENVS == 2).long())  # env 2: mode 1
    gen = torch.Generator().manual_seed(4)
    # groups: 0 the first explorer, 1 the mode, 2 the second explorer
    own = buffer.sample(300, 3, gen, explore_own=True, explorers=2)
    assert [set((traj_ids(own)[g] % NUM_ENVS).tolist()) for g in range(3)] == [{0}, {2}, {1}]
    shared = buffer.sample(300, 3, gen, explorers=2)
    assert [set((traj_ids(shared)[g] % NUM_ENVS).tolist()) for g in range(3)] == [
        {0, 1, 2},
        {2},
        {0, 1, 2},
    ]
    assert shared["has_data"].all() and shared["success"][[0, 2]].all()


def test_state_dict_round_trip() -> None:
    buffer, env = make_buffer(), MarkerEnv([[3], [4], [5]])
    fill(buffer, env, 9)
    ids = buffer.completed(feature_dim=1)["ids"]
    buffer.set_groups(ids[:2], torch.tensor([1, 2]))
    stream = io.BytesIO()
    torch.save(buffer.state_dict(), stream)
    stream.seek(0)
    restored = make_buffer()
    restored.load_state_dict(torch.load(stream))
    first = buffer.sample(64, 3, torch.Generator().manual_seed(5))
    second = restored.sample(64, 3, torch.Generator().manual_seed(5))
    for key, value in first.items():
        assert torch.equal(value, second[key]), key
    twin = copy.deepcopy(env)
    fill(buffer, env, 4)
    fill(restored, twin, 4)
    for key, value in buffer.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key


def test_successes_are_kept_while_failures_take_the_ring() -> None:
    buffer, env = make_buffer(memory_size=9), MarkerEnv([[2], [2], [2]])
    assert buffer.slots_per_env == 3
    fill(buffer, env, 2)  # episode 0 done everywhere: successes for envs 0 and 1, env 2 failed
    buffer.evict(torch.tensor([1]))  # env 1's success leaves through a per-mode cap
    env.succeed = set()
    fill(buffer, env, 10)  # five more episodes per env, all failures
    ids = buffer.completed(feature_dim=1)["ids"].tolist()
    assert 0 in ids  # env 0's success survived five failures in a 3-slot ring
    assert 1 not in ids and 2 not in ids  # the evicted success and the failure were overwritten
    assert sorted(i for i in ids if i % NUM_ENVS == 2) == [4 * NUM_ENVS + 2, 5 * NUM_ENVS + 2]
