"""ExposeAnyone's web app: enroll a person, check a clip, see why.

Run ``python app.py`` (serves on 127.0.0.1:7860; ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` override).
This file only lays out components and wires them to :mod:`exposeanyone.ui.actions`, which does the work.
"""
from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from exposeanyone.core.config import EXAMPLES_DIR, Limits, profiles_dir
from exposeanyone.core.errors import InputError
from exposeanyone.core.memory import keep_resident_memory_low
from exposeanyone.media.corruptions import CORRUPTIONS
from exposeanyone.profiles import ProfileStore
from exposeanyone.ui import actions as ui
from exposeanyone.ui import examples as example_clips
from exposeanyone.ui import plots, session
from exposeanyone.ui.session import ProfileStores, shared_deployment

try:  # ZeroGPU Spaces: the heavy handlers get a GPU while they run
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_options):
        """Stand-in for ``spaces.GPU`` off ZeroGPU: leaves the function as it is."""
        return fn if fn is not None else (lambda inner: inner)

DOCS_DIR = Path(__file__).resolve().parent / "docs"
HEAVY = "heavy"
"""One queue for everything that tracks faces or runs a model, so they never compete for the CPU/GPU."""
THEME = gr.themes.Default(font=["DejaVu Sans", "Liberation Sans", "sans-serif"],
                          font_mono=["DejaVu Sans Mono", "Liberation Mono", "monospace"])
CSS = (".status-box {min-height: 2em} .numbers table {font-size: 0.92em} "
       ".numbers th, .numbers td:nth-child(2) {white-space: nowrap}")
INTRO = """# ExposeAnyone
**Is this talking-head video really them?** Enroll a person from a few genuine clips of them speaking, then
check any clip that claims to show them. The app tells you whether the face moves the way *this person*
moves to *this audio*, and shows why."""
READY_NOTE = ("**Try it now:** *{person}* is already enrolled, so click one of the example clips below **Check** "
              "to get a verdict in seconds. To check someone else, enroll them first in *1. Enroll a person* from "
              "20 s or more of genuine footage.")
EXAMPLES_NOTE = ("Each example's label says what the clip truly is; compare it with the verdict. The shipped models "
                 "do not get every example right: the README's *Examples* section says which and why.")
SHARED_NOTE = ("**Your profiles are private to this tab**: other visitors cannot see or change them, and they are "
               "deleted when you close it. Download a profile's archive to keep it, and upload it again next time.")


def about_markdown() -> str:
    links = " · ".join(f"[{title}]({url})" for title, url in ui.PAPERS.items())
    return f"""## How it works
ExposeAnyone learns **how one person talks**: which facial expressions and head movements go with which
sounds when *they* speak. A generic audio-to-expression diffusion model (EXAM) is trained once on many
speakers. Enrolling a person fits a handful of *identity tokens* to their genuine reference clips, leaving
the model itself untouched, so the same model with the person's tokens becomes their personal model.

To check a clip, its face is tracked (52 MediaPipe blendshapes and the head pose, 25 times a second) and
its audio turned into speech features by a frozen Whisper-base encoder. Every 4-second window with a visible
face and speech is noised and reconstructed several times from the same noise: with the person's tokens and
with generic ones, and with the clip's own sound and with that sound moved by 1.4-2 seconds. The **score** multiplies two ratios of those
reconstruction errors: the *identity ratio* (person's tokens ÷ generic ones: does this person's way of talking
explain the face?) and the *timing ratio* (own sound ÷ moved sound, on the lips: does the face follow its own
sound?). Genuine footage of the person scores well below 1; a dubbed, lip-synced or face-swapped clip does not,
because its face was not driven by the person's own way of talking to that audio. The **threshold** is set
during enrollment on held-out halves of the person's own reference footage, so that 5 % of their genuine
windows would be flagged.

A second detector, **FauForensics**, needs no enrollment: it checks, second by second, whether each face
frame matches its own sound (facial action units against audio). It is shown in its own tab when its model
is installed.

## Limits
- It needs **clean reference footage** of the person (20 s or more of them speaking to the camera) and
  **audible speech** in the clip to check; silent stretches and hidden faces are not scored.
- It **cannot judge people who are not enrolled**: the verdict only says whether the clip is consistent with
  *this* person's reference footage.
- A very different recording set-up (language, emotion, microphone, camera) than the references can raise
  the score of genuine footage: reference clips from more than one recording make the threshold fairer. A score
  is evidence, not proof.
- The base model shipped here was trained on a small corpus on a CPU; its numbers are those of a
  demonstration, not of the paper.

## Papers
{links}"""


def method_diagram_html() -> str:
    path = DOCS_DIR / "method.svg"
    svg = path.read_text(encoding="utf-8") if path.is_file() else ""
    return f'<div style="max-width: 900px; overflow-x: auto">{svg}</div>'


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def _error_markdown(error: Exception) -> str:
    return f"### ⚠️ {error}"


def _progress_fn(progress: gr.Progress):
    return lambda fraction, message: progress(min(1.0, max(0.0, fraction)), desc=message)


def _profile_choices(names: list[str], value: str | None = None):
    return gr.update(choices=names, value=value if value in names else (names[0] if names else None))


def build_demo(store: ProfileStore | None = None, examples: bool = True,
               session_files: session.SessionFiles | None = None, shared: bool | None = None,
               warm_up: bool = False) -> gr.Blocks:
    """The app. ``store`` defaults to the user's profiles folder; ``examples=False`` offers no example clips
    and no ready person; ``warm_up`` loads the models and analyses the example clips first
    (:func:`~exposeanyone.ui.examples.warm_up`: part of start-up, so the first visitor's check takes seconds).

    ``shared`` (default: :func:`~exposeanyone.ui.session.shared_deployment`) gives every session its own
    profiles, deleted with the session, instead of ``store``.
    """
    files = session_files or session.SessionFiles()
    detectors = ui.available_detectors()
    enrolling = ui.enrolling_detectors()
    example = _examples() if examples else None
    stores = ProfileStores(store or ProfileStore(profiles_dir()), files,
                           shared_deployment() if shared is None else shared,
                           ready=example_clips.ready_store(example, enrolling))
    cancels = session.CancelFlags()
    ready_person = stores.ready_names[0] if stores.ready_names else None
    if warm_up and ready_person:
        example_clips.warm_up(example, detectors[:2])

    # ----------------------------------------------------------------------------- handlers
    @gpu(duration=600)
    def enroll_person(name, references, chosen_detectors, replace, request: gr.Request, progress=gr.Progress()):
        session = _session(request)
        flag = cancels.flag(session or "")
        try:
            store = stores.for_session(session)
            stores.check_room(store, name)
            profile = ui.enroll(name, references or [], store, chosen_detectors or None, _progress_fn(progress), flag,
                                replace=bool(replace))
            archive = ui.export_profile(store, profile.name, files.folder(session))
        except InputError as error:
            return (_error_markdown(error), {"error": str(error)}, gr.update(), gr.update(), gr.update(), None)
        finally:
            cancels.finish(session or "")
        summary = ui.enrollment_summary(profile)
        names = store.names()
        return (ui.enrollment_status(summary), summary, _profile_choices(names, profile.name),
                _profile_choices(names, profile.name), ui.enrollment_markdown(summary), str(archive))

    def enrollment_requested(request: gr.Request):
        cancels.start(_session(request) or "")

    def cancel_enrollment(request: gr.Request):
        if cancels.cancel(_session(request) or ""):
            return "### Enrollment cancelled; nothing was saved."
        return "Nothing to cancel."

    def show_profile(name, request: gr.Request):
        try:
            store = stores.holding(_session(request), name)
            _, text = ui.profile_overview(store, name)
            archive = ui.export_profile(store, name, files.folder(_session(request))) if name else None
        except InputError as error:
            return _error_markdown(error), None
        return text, (str(archive) if archive else None)

    def upload_profile(archive, name, replace, request: gr.Request):
        try:
            store = stores.for_session(_session(request))
            stores.check_room(store, (name or "").strip() or None)
            profile = ui.import_profile(store, archive, name, replace=bool(replace))
        except InputError as error:
            return _error_markdown(error), gr.update(), gr.update()
        names = store.names()
        return (f"Installed profile '{profile.name}'.", _profile_choices(names, profile.name),
                _profile_choices(names, profile.name))

    def refresh_profiles(current_enroll, current_check, request: gr.Request):
        names = stores.names(_session(request))
        return _profile_choices(names, current_enroll), _profile_choices(names, current_check)

    def spec_from_sliders(*levels):
        try:
            return ui.corruption_spec(dict(zip(CORRUPTIONS, levels)))
        except InputError as error:
            return str(error)

    @gpu(duration=300)
    def check_clip(video, profile_name, detector, corrupt, channels, request: gr.Request, progress=gr.Progress()):
        try:
            report = ui.check(video, profile_name, stores.holding(_session(request), profile_name), detector,
                              corrupt or "", _progress_fn(progress))
            json_path, csv_path = ui.write_report_files(report, files.folder(_session(request)))
        except InputError as error:
            empty = plots.message_figure(str(error))
            return (_error_markdown(error), {"error": str(error)}, empty, empty, empty, None, None)
        return (ui.report_markdown(report), ui.report_summary(report), plots.genuine_distribution_figure(report),
                plots.frame_score_figure(report, ui.suspicious_segments(report)),
                plots.trajectory_figure(report, channels or ui.default_channels("Mouth and jaw")),
                [str(json_path), str(csv_path)], report)

    @gpu(duration=120)
    def annotate_clip(video, report, request: gr.Request, progress=gr.Progress()):
        from exposeanyone.ui.annotate import annotate_video

        if report is None or not video:
            return None, gr.update()
        try:
            json_path, csv_path = ui.write_report_files(report, files.folder(_session(request)))
            out = annotate_video(video, report, json_path.with_name(json_path.stem.replace("_report", "_annotated")
                                                                    + ".mp4"), progress=_progress_fn(progress))
        except InputError as error:
            gr.Warning(str(error))
            return None, gr.update()
        if files.discard_if_ended(_session(request)):
            return None, gr.update()
        return str(out), [str(json_path), str(csv_path), str(out)]

    @gpu(duration=120)
    def fau_result(video, report, request: gr.Request, progress=gr.Progress()):
        if "fau" not in detectors:
            text = ui.not_installed("fau")
            return text, plots.message_figure(text.replace("`", ""))
        if report is None or not video:
            return "Check a clip first.", plots.message_figure("Check a clip first.")
        try:
            # the same clip and corruption as the report this session just got
            fau = report if report.detector == "fau" else ui.check(video, None, stores.for_session(_session(request)),
                                                                   "fau",
                                                                   report.settings.get("corrupt", ""),
                                                                   _progress_fn(progress))
        except InputError as error:
            return _error_markdown(error), plots.message_figure(str(error))
        return ui.report_markdown(fau), plots.av_consistency_figure(fau)

    def redraw_trajectories(report, channels):
        if report is None:
            return plots.message_figure("Check a clip to see its expression trajectories.")
        return plots.trajectory_figure(report, channels or [])

    def cleanup(request: gr.Request):
        files.remove(_session(request))

    # ----------------------------------------------------------------------------- layout
    initial_names = stores.names(None)  # a shared app's visitor starts with the ready person only
    with gr.Blocks(title="ExposeAnyone", delete_cache=(3600, 3600)) as demo:
        report_state = gr.State(None, time_to_live=3600)  # a report holds per-frame curves: free it after an hour
        gr.Markdown(INTRO)
        if ready_person:
            gr.Markdown(READY_NOTE.format(person=ready_person), elem_id="ready-note")
        if stores.shared:
            gr.Markdown(SHARED_NOTE, elem_id="shared-note")
        with gr.Tabs(selected="check" if ready_person else "enroll"):
            with gr.Tab("1. Enroll a person", id="enroll"):
                with gr.Row():
                    with gr.Column(scale=1):
                        person = gr.Textbox(label="Person's name", placeholder="e.g. Alice Example",
                                            info="The profile is saved under this name.")
                        replace = gr.Checkbox(False, label="Replace",
                                              info="Overwrite a profile that already has this name.")
                        references = gr.File(label="Genuine reference clips of the person speaking",
                                             file_count="multiple", file_types=["video"], type="filepath",
                                             elem_id="references")
                        chosen = gr.CheckboxGroup(enrolling or ["exam"], value=(enrolling or ["exam"])[:1],
                                                  label="Detectors to personalise",
                                                  info=ui.detectors_info(enrolling or ["exam"]))
                        with gr.Row():
                            enroll_button = gr.Button("Enroll", variant="primary")
                            cancel_button = gr.Button("Cancel", variant="stop")
                        if example is not None:
                            own_name = f"{example.person} (mine)" if ready_person else example.person
                            gr.Examples([[[str(p) for p in example.references], own_name]],
                                        inputs=[references, person], label=f"Reference clips: {example.person}")
                    with gr.Column(scale=1):
                        enroll_status = gr.Markdown("Upload clips, name the person and press **Enroll**.",
                                                    elem_classes=["status-box", "numbers"])
                        with gr.Accordion("Enrolled profiles", open=True):
                            profile_pick = gr.Dropdown(initial_names, label="Enrolled profiles",
                                                       allow_custom_value=True,
                                                       info="Pick one to see its summary and download it.")
                            profile_info = gr.Markdown(elem_classes=["numbers"], elem_id="profile-info")
                            profile_file = gr.File(label="Profile archive (download)", interactive=False)
                            with gr.Row():
                                profile_upload = gr.File(label="Upload a profile archive (.zip)", file_types=[".zip"])
                                upload_name = gr.Textbox(label="Install under name (optional)")
                            upload_replace = gr.Checkbox(False, label="Replace a profile of that name")
                            upload_button = gr.Button("Install uploaded profile")
                        with gr.Accordion("Enrollment summary (JSON)", open=False):
                            enroll_json = gr.JSON(label="Enrollment summary")

            with gr.Tab("2. Check a clip", id="check"):
                with gr.Row():
                    with gr.Column(scale=2):
                        clip = gr.Video(label="Clip to check", sources=["upload"], height=360)
                        check_profile = gr.Dropdown(initial_names, value=ready_person, label="Profile",
                                                    allow_custom_value=True, info="The person the clip claims to show.")
                        detector = gr.Dropdown(detectors, value=detectors[0], label="Detector",
                                               info="exam needs a profile; fau and sync judge anyone.")
                        with gr.Accordion("Corruptions: test how the verdict holds", open=False):
                            gr.Markdown("Level 0 is off; levels 1-5 are the DeeperForensics-1.0 strengths.")
                            sliders = [gr.Slider(0, 5, value=0, step=1, label=ui.corruption_label(name),
                                                 info=ui.corruption_info(name), elem_id=f"corrupt-{name}")
                                       for name in CORRUPTIONS]
                            corrupt = gr.Textbox(label="Corruption spec", value="", elem_id="corrupt-spec",
                                                 info="Set by the sliders, or typed, e.g. 'blur:3,jpeg:2'.")
                        check_button = gr.Button("Check", variant="primary")
                        check_examples = None
                        if example is not None:
                            check_examples = gr.Examples(
                                [[str(p), ready_person or example.person] for p in example.checks],
                                inputs=[clip, check_profile], example_labels=example.check_labels,
                                label=f"Clips of {example.person} to check" + (" (click: checked at once)"
                                                                               if ready_person else ""),
                                elem_id="check-examples")
                            if ready_person:
                                gr.Markdown(EXAMPLES_NOTE)
                    with gr.Column(scale=3):
                        verdict = gr.Markdown("Upload a clip, pick the profile and press **Check**.",
                                              elem_classes=["status-box", "numbers"], elem_id="verdict")
                        genuine_plot = gr.Plot(label="Score among the person's genuine scores")
                gr.Markdown("## Why: the evidence over time")
                frame_plot = gr.Plot(label="Per-frame score")
                with gr.Row():
                    group = gr.Radio(list(ui.CHANNEL_GROUPS), value="Mouth and jaw", label="Expression group")
                    channels = gr.Dropdown(ui.all_channels(), value=ui.default_channels("Mouth and jaw"),
                                           multiselect=True, label="Channels shown",
                                           info="Observed (solid) vs generated from the audio by the person's "
                                                "model (dashed).")
                trajectory_plot = gr.Plot(label="Expression trajectories", elem_id="trajectories")
                with gr.Row():
                    annotated = gr.Video(label="Annotated copy: verdict and score strip, cursor = current time",
                                         interactive=False, height=480, elem_id="annotated")
                    downloads = gr.File(label="Download: report (JSON), per-frame curve (CSV), annotated copy",
                                        file_count="multiple", interactive=False, elem_id="downloads")
                with gr.Accordion("Summary (JSON)", open=False):
                    summary = gr.JSON(label="Summary")

            with gr.Tab("FauForensics", id="fau"):
                fau_text = gr.Markdown("Check a clip first: the FauForensics result appears here.",
                                       elem_classes=["numbers"], elem_id="fau-result")
                fau_plot = gr.Plot(label="Audio-visual consistency")

            with gr.Tab("About", id="about"):
                gr.HTML(method_diagram_html())
                gr.Markdown(about_markdown())

        # ------------------------------------------------------------------------- events
        enroll_requested = enroll_button.click(enrollment_requested, None, None, queue=False, api_visibility="private")
        enroll_event = enroll_requested.then(
            enroll_person, [person, references, chosen, replace],
            [enroll_status, enroll_json, profile_pick, check_profile, profile_info, profile_file],
            api_name="enroll", concurrency_id=HEAVY, concurrency_limit=1)
        cancel_button.click(cancel_enrollment, None, enroll_status, cancels=[enroll_event], queue=False,
                            api_visibility="private")
        profile_pick.change(show_profile, profile_pick, [profile_info, profile_file], api_visibility="private")
        upload_button.click(upload_profile, [profile_upload, upload_name, upload_replace],
                            [profile_info, profile_pick, check_profile],
                            api_name="import_profile")
        for slider in sliders:
            slider.change(spec_from_sliders, sliders, corrupt, queue=False, api_visibility="private")
        group.change(ui.default_channels, group, channels, queue=False, api_visibility="private")
        channels.change(redraw_trajectories, [report_state, channels], trajectory_plot, api_visibility="private")

        def run_check(trigger, public: bool) -> None:
            """``check_clip`` on ``trigger``, then the annotated copy and the FauForensics opinion; ``public``:
            under the API names "score", "annotate" and "fau"."""
            api = ({"api_name": "score"}, {"api_name": "annotate", "api_visibility": "undocumented"},
                   {"api_name": "fau", "api_visibility": "undocumented"}) if public else \
                ({"api_visibility": "private"},) * 3
            heavy = {"concurrency_id": HEAVY, "concurrency_limit": 1}
            score_event = trigger(check_clip, [clip, check_profile, detector, corrupt, channels],
                                  [verdict, summary, genuine_plot, frame_plot, trajectory_plot, downloads, report_state],
                                  **heavy, **api[0])
            score_event.success(annotate_clip, [clip, report_state], [annotated, downloads], **heavy, **api[1])
            score_event.success(fau_result, [clip, report_state], [fau_text, fau_plot], **heavy, **api[2])

        run_check(check_button.click, public=True)
        if check_examples is not None and ready_person:  # one click on an example checks it
            run_check(check_examples.load_input_event.then, public=False)
        demo.load(refresh_profiles, [profile_pick, check_profile], [profile_pick, check_profile],
                  api_visibility="private")
        demo.unload(cleanup)
    return demo


def _examples() -> example_clips.Examples | None:
    """The shipped GRID examples, or synthetic clips (made once, in a few seconds) where they are absent."""
    shipped = example_clips.shipped_examples()
    if shipped is not None:
        return shipped
    try:
        return example_clips.synthetic_examples()
    except (ImportError, InputError, OSError) as error:  # the app works without examples
        print(f"note: no example clips ({error})")
        return None


def launch_options() -> dict:
    """``launch()`` arguments shared by ``python app.py`` and the tests."""
    limits = Limits.from_env()
    # only the example clips and the docs: never the analysis cache, the profiles or a session's files
    allowed = [str(EXAMPLES_DIR), str(example_clips.synthetic_dir()), str(DOCS_DIR)]
    return {"max_file_size": int(limits.max_file_mb * gr.FileSize.MB), "theme": THEME, "css": CSS,
            "allowed_paths": allowed, "show_error": False}


def main() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    keep_resident_memory_low()
    demo = build_demo(warm_up=True)
    demo.queue(default_concurrency_limit=1, max_size=int(os.environ.get("EXPOSEANYONE_QUEUE_SIZE", "20")))
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), **launch_options())


if __name__ == "__main__":
    main()
