"""A checkpoint Ray names but deleted (a stale snapshot after a killed driver) restarts the
trial from epoch 1 instead of failing it."""

import shutil

from ray import tune

from capstudy.launch.trainable import restore_checkpoint


def test_a_present_checkpoint_is_restored(tmp_path):
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "state.json").write_text("{}")
    restored = restore_checkpoint(tune.Checkpoint.from_directory(str(src)), str(tmp_path / "r"))
    assert restored is not None and (restored / "state.json").read_text() == "{}"


def test_a_deleted_checkpoint_means_a_fresh_start(tmp_path):
    src = tmp_path / "ckpt"
    src.mkdir()
    checkpoint = tune.Checkpoint.from_directory(str(src))
    shutil.rmtree(src)
    assert restore_checkpoint(checkpoint, str(tmp_path / "r")) is None
    assert restore_checkpoint(None, str(tmp_path / "r")) is None
