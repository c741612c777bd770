"""Progress for logs: when stderr is not a terminal, one line every few seconds and at the last step."""
from explr.cli.progress import ProgressNotes, progress_bar


def test_a_note_every_interval_and_at_the_end():
    now, lines = [0.0], []
    notes = ProgressNotes(every=5.0, clock=lambda: now[0], write=lines.append)
    for t in range(1, 21):
        now[0] = t * 1.1  # 1.1 s a step
        notes(t, 20)
    assert lines[0] == "training step 5/20, 6 s so far, ~16 s left"  # 5.5 s for 5 steps: 1.1 s each
    assert len(lines) == 4 and lines[-1].startswith("training step 20/20, 22 s so far, ~0 s left")


def test_without_a_terminal_the_progress_is_notes_not_a_bar():
    with progress_bar(False) as on_step:
        assert isinstance(on_step, ProgressNotes)
