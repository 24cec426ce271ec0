"""The Live microphone tab on ZeroGPU (tests/zerogpu's stand-in for `spaces`): the stream's state stays in the app's
process, and each update is one GPU call given that state as plain data, in a forked worker where alone a model may
run; Stop compares the recording in one more."""

from test_app_abuse import Visitor
from test_many_and_live_app import Streamer, live_info, pieces  # noqa: F401 (a fixture)


def test_each_live_update_is_one_gpu_call_and_the_text_grows(zerogpu_app, pieces):  # noqa: F811
    visitor = Streamer(zerogpu_app.url)
    sequence = (pieces * 3)[:13]  # 6.5 s: three updates (the resampler holds a few samples back at 6.0 s)
    event_id = visitor.open(visitor.upload(sequence[0]))
    outputs = []
    for piece in sequence[1:]:
        outputs.append(visitor.next_output(event_id, timeout=120))
        visitor.send(event_id, visitor.upload(piece))
    outputs.append(visitor.next_output(event_id, timeout=120))
    visitor.close(event_id)
    texts = [output["output"]["data"][0] for output in outputs]
    steps = [call for call in zerogpu_app.gpu_calls() if call["function"].endswith("make_step.<locals>.step")]
    assert "Heard **6.5 s**" in live_info(outputs[-1])
    assert len(steps) == 3 and all(call["outcome"] == "ok" for call in steps)
    updated = [text for previous, text in zip([""] + texts, texts, strict=False) if text != previous]
    assert len(updated) >= 2 and all(updated)  # the text changed as more was heard, and never went blank

    stopped = Visitor.call(visitor, "on_stop", [None, "Portuguese"])
    assert stopped["success"], stopped
    assert "real-time factor" in stopped["output"]["data"][2]
    compares = [call for call in zerogpu_app.gpu_calls() if call["function"].endswith("make_compare.<locals>.run")]
    assert compares and compares[-1]["outcome"] == "ok"
    assert "MainProcessModelWork" not in zerogpu_app.log.read_text()
