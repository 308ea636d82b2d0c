//! `recheck`: the verdict again from a replay's saved serial session, and
//! the judging of a board's kernel log dump that the live replay shares.

use super::{board_modules, context, DUMP_BEGIN, DUMP_END};
use crate::judge::expect::Expectations;
use crate::judge::marker::{self, Marker};
use crate::judge::step::Transcript;
use crate::judge::verdict::{self, RunEnd, Verdict};
use crate::module;
use crate::options::ModuleArgs;
use crate::plan;
use crate::prepare;
use crate::splitter::LineSplitter;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The kernel log lines of the last complete dump in a raw serial session:
/// those between a `@@DMESG0@@` line and the next `@@DMESGEND0@@` line.
pub fn extract_dump(raw: &[u8]) -> Option<Vec<String>> {
    let mut s = LineSplitter::default();
    let mut lines = s.feed(raw);
    lines.extend(s.finish());
    let end = lines.iter().rposition(|l| l.contains(DUMP_END))?;
    let begin = lines[..end].iter().rposition(|l| l.contains(DUMP_BEGIN))?;
    Some(lines[begin + 1..end].to_vec())
}

/// Judges a replay's kernel log dump: the lines after its start marker (the
/// last one, or the one with `nonce`), through the same verdict as `check`.
/// The start marker names the modules, from which the steps are planned
/// again; `names`, when given, must agree. The transcript too, for the
/// report's page.
pub fn judge_dump(
    dump: &[String],
    nonce: Option<&str>,
    expectations: &Expectations,
    names: &[String],
    kos: &[(String, PathBuf)],
    log: &Path,
) -> Result<(Verdict, Transcript)> {
    let start = |l: &String| match marker::parse_any(marker::split_timestamp(l).1) {
        Some((n, Marker::Start { label })) => Some((n.to_string(), label)),
        _ => None,
    };
    let Some((found, label)) = dump.iter().rev().find_map(start) else {
        bail!(
            "the kernel log dump has no `@@harness … start` line: the board's log buffer dropped it (a small \
             log_buf_len and a chatty module), or the dump is not from a replay"
        );
    };
    if let Some(n) = nonce {
        if found != n {
            bail!(
                "the last replay start line in the kernel log is {found}, not this replay's {n}: did another replay \
                run at the same time?"
            );
        }
    }
    let mut t = Transcript::after_start(&found);
    for l in dump {
        t.push(l);
    }
    let started: Vec<String> = label.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let names = if names.is_empty() { started } else { names.to_vec() };
    let end = if t.done {
        RunEnd::Completed
    } else if t
        .lines
        .iter()
        .any(|l| crate::judge::event::classify(&l.message) == Some(crate::judge::event::EventKind::Panic))
    {
        RunEnd::Panicked
    } else {
        // The step script stopped without saying done (its shell was killed).
        RunEnd::ExitedEarly { status: None }
    };
    let v = judge_transcript(&t, end, expectations, &names, kos, log)?;
    Ok((v, t))
}

/// The verdict on a board's transcript, however it was read: from the dump,
/// or from the console lines the watch saw when the replay stopped early
/// (live, or again from the saved session). What the replay said of its
/// build (`api` and `port` markers) gives the port list without the build.
pub fn judge_transcript(
    t: &Transcript,
    end: RunEnd,
    expectations: &Expectations,
    names: &[String],
    kos: &[(String, PathBuf)],
    log: &Path,
) -> Result<Verdict> {
    let plan = plan::plan(&board_modules(names, None), expectations)?;
    let mut ctx = context(log, names, kos, t)?;
    ctx.explain = crate::changes::load_explanations(t);
    if let Some(api) = &t.api {
        ctx.api = api.clone();
    }
    if !t.ports.is_empty() {
        let table = crate::changes::load(&crate::repo_root().join("configs"))?;
        ctx.ports = t.ports.iter().filter_map(|(id, at, note)| table.port(id, at, note.as_deref())).collect();
    }
    Ok(verdict::judge(t, expectations, &plan.names(), end, ctx))
}

/// How a replay that stopped early ended, as its watch saw it: written by
/// the harness beside the saved session (`<transcript>.end.json`; the
/// session file holds only what the board sent, which cannot be trusted to
/// say it), so that `recheck` judges the console lines with the same end.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stopped {
    pub nonce: String,
    pub names: Vec<String>,
    pub end: RunEnd,
    /// How many lines after the start line the watch had seen when it
    /// stopped: what the board sent after that (the clean-up's commands) was
    /// not part of the verdict.
    pub lines: usize,
}

impl Stopped {
    pub fn path(transcript: &Path) -> PathBuf {
        let mut p = transcript.as_os_str().to_owned();
        p.push(".end.json");
        PathBuf::from(p)
    }

    pub fn write(&self, transcript: &Path) -> Result<()> {
        let path = Self::path(transcript);
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    fn read(transcript: &Path) -> Result<Option<Stopped>> {
        let path = Self::path(transcript);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a replay's end record", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// The console lines of a saved session from the start line of `nonce` on,
/// `lines` of them: what the live watch was fed.
pub fn console_transcript(raw: &[u8], nonce: &str, lines: usize) -> Transcript {
    let mut s = LineSplitter::default();
    let mut t = Transcript::after_start(nonce);
    for l in s.feed(raw).into_iter().chain(s.finish()) {
        if t.started() && t.seen() >= lines {
            break;
        }
        t.push(&l);
    }
    t
}

/// `recheck`: the verdict again from a transcript saved by `replay --transcript`.
#[derive(clap::Args, Debug, Clone)]
pub struct RecheckOptions {
    /// A transcript written by `replay --transcript`.
    #[arg(long, value_name = "FILE", required_unless_present = "lava_log")]
    pub transcript: Option<PathBuf>,
    #[command(flatten)]
    pub lava: crate::lava::LavaLogArgs,
    #[command(flatten)]
    pub module: ModuleArgs,
    /// The modules' names [default: those the replay wrote in its start line].
    #[arg(long = "module-name", value_name = "NAME")]
    pub module_names: Vec<String>,
    /// The .ko files that were replayed, to name addresses in kernel reports.
    #[arg(long, value_name = "FILE")]
    pub ko: Vec<PathBuf>,
}

/// The module folder the replay said it built (its `dir` marker of the
/// last replay's start line's run), when the session has one.
pub fn replayed_dir(raw: &[u8]) -> Option<PathBuf> {
    let mut s = LineSplitter::default();
    let lines: Vec<String> = s.feed(raw).into_iter().chain(s.finish()).collect();
    let parsed = || lines.iter().filter_map(|l| marker::parse_any(marker::split_timestamp(l).1));
    let nonce = parsed().rfind(|(_, m)| matches!(m, Marker::Start { .. }))?.0.to_string();
    parsed()
        .filter(|(n, _)| *n == nonce)
        .filter_map(|(_, m)| if let Marker::Dir { path } = m { Some(PathBuf::from(path)) } else { None })
        .next_back()
}

/// The module folder to judge with: the one given, else the one the
/// transcript names (it must still be there), else the default.
fn module_args(o: &RecheckOptions, raw: &[u8]) -> Result<ModuleArgs> {
    let given = !o.module.module_dirs.is_empty() || !o.module.kernel_modules.is_empty() || o.module.expect.is_some();
    match replayed_dir(raw).filter(|_| !given) {
        Some(dir) if dir.is_dir() => {
            eprintln!("harness: recheck: the module folder from the transcript: {}", dir.display());
            Ok(o.module.with_dir(dir))
        }
        Some(dir) => {
            let t = o.transcript.as_deref().unwrap_or(Path::new("the transcript"));
            bail!("{}: the replay's module folder {} is gone: give --module DIR", t.display(), dir.display())
        }
        None => Ok(o.module.clone()),
    }
}

/// Judges a saved serial transcript again, offline.
pub fn recheck(o: &RecheckOptions) -> Result<Verdict> {
    if let Some(log) = &o.lava.lava_log {
        let record = o.lava.lava_job.clone().unwrap_or_else(|| log.with_file_name(crate::lava::RECORD));
        return crate::lava::recheck_lava(log, &record, &o.module, o.lava.kcidb.as_deref());
    }
    let Some(transcript) = &o.transcript else { bail!("give --transcript FILE or --lava-log FILE") };
    let raw = std::fs::read(transcript).with_context(|| format!("reading the transcript {}", transcript.display()))?;
    let expectations = prepare::expectations(&module_args(o, &raw)?)?;
    let kos = o.ko.iter().map(|ko| Ok((module::modinfo(ko)?.name()?, ko.clone()))).collect::<Result<Vec<_>>>()?;
    let names =
        if o.module_names.is_empty() { kos.iter().map(|(n, _)| n.clone()).collect() } else { o.module_names.clone() };
    if let Some(dump) = extract_dump(&raw) {
        return Ok(judge_dump(&dump, None, &expectations, &names, &kos, transcript)?.0);
    }
    // No dump: the replay stopped early, and judged what the console showed.
    let Some(stopped) = Stopped::read(transcript)? else {
        bail!(
            "{}: no complete kernel log dump ({DUMP_BEGIN} … {DUMP_END}) in it, and no {} beside it: \
             the replay stopped before the steps finished, so only its live verdict exists",
            transcript.display(),
            Stopped::path(transcript).display()
        );
    };
    let names = if names.is_empty() { stopped.names } else { names };
    let t = console_transcript(&raw, &stopped.nonce, stopped.lines);
    judge_transcript(&t, stopped.end, &expectations, &names, &kos, transcript)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::verdict::Outcome;

    fn exp() -> Expectations {
        let p = crate::repo_root().join("kmod/expect.toml");
        Expectations::parse(&std::fs::read_to_string(&p).unwrap(), "kmod/expect.toml").unwrap()
    }

    const DUMP: &str = "[    0.000000] Booting Linux\r\n\
        [   10.000000] @@harness 00000000000badca start mmc_byte\r\n\
        [   10.050000] @@harness 00000000000badca begin census\r\n\
        [   10.060000] @@harness 00000000000badca end census rc=0\r\n\
        [   10.100000] @@harness 00000000000badca begin insmod\r\n\
        [   10.100000] process:insmod\r\n\
        [   10.200000] @@harness 00000000000badca end insmod rc=0\r\n\
        [   10.300000] @@harness 00000000000badca begin rmmod\r\n\
        [   10.300000] mmc exit!\r\n\
        [   10.400000] @@harness 00000000000badca end rmmod rc=0\r\n\
        [   10.500000] @@harness 00000000000badca begin gone\r\n\
        [   10.600000] @@harness 00000000000badca end gone rc=0\r\n\
        [   10.610000] @@harness 00000000000badca begin insmod#2\r\n\
        [   10.610000] process:insmod\r\n\
        [   10.620000] @@harness 00000000000badca end insmod#2 rc=0\r\n\
        [   10.630000] @@harness 00000000000badca begin rmmod#2\r\n\
        [   10.630000] mmc exit!\r\n\
        [   10.640000] @@harness 00000000000badca end rmmod#2 rc=0\r\n\
        [   10.650000] @@harness 00000000000badca begin gone#2\r\n\
        [   10.660000] @@harness 00000000000badca end gone#2 rc=0\r\n\
        [   10.670000] @@harness 00000000000badca begin census#2\r\n\
        [   10.680000] @@harness 00000000000badca out census#2 same\r\n\
        [   10.690000] @@harness 00000000000badca end census#2 rc=0\r\n\
        [   10.700000] @@harness 00000000000badca done\r\n";

    /// A session as the serial line carries it: the echo of the command
    /// (with `$((0))`), the dump, and console noise around it.
    fn session(dump: &str) -> Vec<u8> {
        let earlier = DUMP.replace("00000000000badca", "000000000001d000").replace("process:insmod", "process:old");
        format!(
            "[root@FriendlyARM /]# echo @@B$((77+0))@@; echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@; echo \
                @@E$((77+0)):$?@@\r\n\
             @@B77@@\r\n@@DMESG0@@\r\n{earlier}@@DMESGEND0@@\r\n@@E77:0@@\r\n\
             [root@FriendlyARM /]# echo @@B$((78+0))@@; echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@; echo \
                 @@E$((78+0)):$?@@\r\n\
             @@B78@@\r\n@@DMESG0@@\r\n{dump}@@DMESGEND0@@\r\n@@E78:0@@\r\n[root@FriendlyARM /]# "
        )
        .into_bytes()
    }

    #[test]
    fn the_last_complete_dump_is_extracted() {
        let lines = extract_dump(&session(DUMP)).unwrap();
        assert_eq!(lines.first().map(String::as_str), Some("[    0.000000] Booting Linux"));
        assert_eq!(lines.last().map(String::as_str), Some("[   10.700000] @@harness 00000000000badca done"));
        assert!(lines.iter().all(|l| !l.contains('\r')));
        // A dump cut short (the replay stopped) is not taken; the earlier
        // complete one is.
        let mut cut = session(DUMP);
        cut.extend_from_slice(b"@@DMESG0@@\r\n[ 1.0] partial\r\n");
        assert!(extract_dump(&cut).unwrap().iter().any(|l| l.contains("00000000000badca start")));
        // The echo of the command is not a dump.
        assert_eq!(extract_dump(b"# echo @@DMESG$((0))@@; dmesg; echo @@DMESGEND$((0))@@\r\n"), None);
    }

    fn judge(dump: &str, nonce: Option<&str>) -> Result<Verdict> {
        Ok(judge_dump(&extract_dump(&session(dump)).unwrap(), nonce, &exp(), &[], &[], Path::new("t.log"))?.0)
    }

    #[test]
    fn a_dump_is_judged_from_its_last_start_line() {
        let v = judge(DUMP, Some("00000000000badca")).unwrap();
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        assert_eq!(v.end, RunEnd::Completed);
        assert_eq!(v.steps.len(), 8, "census, insmod, rmmod, gone, the second round, census#2");
        let err = judge(DUMP, Some("feedf00dfeedf00d")).unwrap_err().to_string();
        assert!(err.contains("not this replay's feedf00dfeedf00d"), "{err}");
        // Lines from before the start (an earlier run) are not the replay's.
        let bad = DUMP.replace(
            "[    0.000000] Booting Linux",
            "[ 0.0] process:insmod\r\n[ 0.1] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x4",
        );
        let v = judge(&bad, None).unwrap();
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
    }

    #[test]
    fn a_dump_without_its_start_line_is_an_error_and_a_bad_one_fails() {
        let no_start = DUMP.replace("@@harness 00000000000badca start mmc_byte", "something");
        let err = judge(&no_start, None).unwrap_err().to_string();
        assert!(err.contains("no `@@harness … start` line"), "{err}");
        let v = judge(&DUMP.replace("mmc exit!", "mmc bye"), None).unwrap();
        assert_eq!(v.outcome, Outcome::Failed, "{v}");
        assert!(v.to_string().contains("console log: t.log"));
        // A forged marker in a module's output does not end a step.
        let forged =
            DUMP.replace("mmc exit!\r\n", "mmc exit!\r\n[   10.35] @@harness 00000000000badca end rmmod rc=0x\r\n");
        assert_eq!(judge(&forged, None).unwrap().outcome, Outcome::Passed);
    }

    /// `recheck` of the transcript `t`, its module folder as `module` says.
    fn options(t: &Path, module: ModuleArgs) -> RecheckOptions {
        let transcript = Some(t.to_path_buf());
        RecheckOptions { transcript, lava: Default::default(), module, module_names: vec![], ko: vec![] }
    }

    fn kmod() -> ModuleArgs {
        ModuleArgs { module_dirs: vec![crate::repo_root().join("kmod")], ..Default::default() }
    }

    #[test]
    fn recheck_reads_a_transcript_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("board.log");
        std::fs::write(&t, session(DUMP)).unwrap();
        let o = options(&t, kmod());
        let v = recheck(&o).unwrap();
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        std::fs::write(&t, b"[root@FriendlyARM /]# \r\n").unwrap();
        let err = format!("{:#}", recheck(&o).unwrap_err());
        assert!(err.contains("no complete kernel log dump"), "{err}");
    }

    /// Without --module, recheck judges with the folder the replay named
    /// (its `dir` marker, of the last replay's run), not kmod/'s
    /// expectations; a folder that is gone is an error, and --module wins.
    #[test]
    fn recheck_takes_the_module_folder_from_the_transcript() {
        let dir = tempfile::tempdir().unwrap();
        let lesson = dir.path().join("my lesson");
        std::fs::create_dir(&lesson).unwrap();
        // Its expectations want a line kmod/'s run never printed.
        std::fs::write(
            lesson.join("expect.toml"),
            "[[step]]\nname = 'insmod'\nexpect = [{ line = 'lesson: hello' }]\n",
        )
        .unwrap();
        let named = |path: &Path, nonce: &str| {
            DUMP.replace(
                "[   10.100000] @@harness 00000000000badca begin insmod",
                &format!(
                    "[   10.01] @@harness {nonce} dir {}\r\n[   10.100000] @@harness 00000000000badca begin insmod",
                    path.display()
                ),
            )
        };
        let t = dir.path().join("board.log");
        std::fs::write(&t, session(&named(&lesson, "00000000000badca"))).unwrap();
        assert_eq!(replayed_dir(&std::fs::read(&t).unwrap()), Some(lesson.clone()));
        let o = options(&t, ModuleArgs::default());
        let v = recheck(&o).unwrap();
        assert_eq!(v.outcome, Outcome::Failed, "judged with the lesson's expectations: {v}");
        assert!(v.to_string().contains("insmod prints line \"lesson: hello\""), "{v}");
        // --module wins over the transcript.
        let given = ModuleArgs { module_dirs: vec![crate::repo_root().join("kmod")], ..Default::default() };
        assert_eq!(recheck(&RecheckOptions { module: given, ..o.clone() }).unwrap().outcome, Outcome::Passed);
        // Another run's dir marker (a forged one) is not taken.
        std::fs::write(&t, session(&named(&lesson, "000000000000beef"))).unwrap();
        assert_eq!(replayed_dir(&std::fs::read(&t).unwrap()), None);
        // A folder that is gone is said.
        std::fs::write(&t, session(&named(&dir.path().join("gone"), "00000000000badca"))).unwrap();
        let err = format!("{:#}", recheck(&o).unwrap_err());
        assert!(err.contains("is gone: give --module DIR"), "{err}");
    }

    /// The port list comes back from the replay's `api` and `port` markers;
    /// one of another run, or of an entry the layer does not cover, is not
    /// taken.
    #[test]
    fn the_port_list_is_read_back_from_the_markers() {
        let with_ports = DUMP.replace(
            "[   10.100000] @@harness 00000000000badca begin insmod",
            "[   10.01] @@harness 00000000000badca api 3.5\r\n\
             [   10.02] @@harness 00000000000badca port timer hello.c:17,hello.c:18\r\n\
             [   10.03] @@harness 00000000000badca port module-named-module - module.ko is built as module35.ko\r\n\
             [   10.04] @@harness 00000000000badca port fops-ioctl hello.c:40\r\n\
             [   10.05] @@harness 000000000000beef port devinit hello.c:3\r\n\
             [   10.100000] @@harness 00000000000badca begin insmod",
        );
        let v = judge(&with_ports, None).unwrap();
        assert_eq!(v.outcome, Outcome::Passed, "{v}");
        assert_eq!(v.api, "3.5");
        let got: Vec<(&str, Vec<&str>, Option<&str>)> = v
            .ports
            .iter()
            .map(|p| (p.id.as_str(), p.at.iter().map(String::as_str).collect(), p.note.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("timer", vec!["hello.c:17", "hello.c:18"], None),
                ("module-named-module", vec![], Some("module.ko is built as module35.ko"))
            ]
        );
        assert!(v.to_string().contains("a port to it changes these:"), "{v}");
        // Without the markers (a replay before they existed), no list, and
        // the API is not claimed.
        let v = judge(DUMP, None).unwrap();
        assert!(v.ports.is_empty());
        assert_eq!(v.api, "native");
    }

    /// A replay stopped during insmod (a hung init): no dump, the record
    /// beside the session, and the clean-up's lines after the watch stopped.
    #[test]
    fn a_stopped_replay_is_judged_from_the_console_lines_the_watch_saw() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("board.log");
        let n = "00000000000badca";
        let session = format!(
            "[root@FriendlyARM /]# ( HARNESS_NONCE={n}; harness_mark start mmc_byte; harness_scenario )\r\n\
             [   10.0] @@harness {n} start mmc_byte\r\n\
             [   10.1] @@harness {n} begin insmod\r\n\
             [   10.1] process:insmod\r\n\
             ^C\r\n[root@FriendlyARM /]# rmmod mmc_byte\r\n[   80.0] mmc exit!\r\n[root@FriendlyARM /]# "
        );
        std::fs::write(&t, &session).unwrap();
        let end = RunEnd::StepTimedOut { step: "insmod".into(), unit: None, after_secs: 60 };
        let stopped = Stopped { nonce: n.into(), names: vec!["mmc_byte".into()], end: end.clone(), lines: 2 };
        stopped.write(&t).unwrap();
        let o = options(&t, kmod());
        let v = recheck(&o).unwrap();
        assert_eq!(v.outcome, Outcome::TimedOut, "{v}");
        assert_eq!(v.end, end);
        assert_eq!(v.reason.as_deref(), Some("step insmod did not finish within 60 s"));
        assert!(!v.to_string().contains("rmmod mmc_byte"), "the clean-up's lines are not the run's: {v}");
        assert!(
            console_transcript(session.as_bytes(), n, usize::MAX)
                .lines
                .iter()
                .any(|l| l.message.contains("rmmod mmc_byte")),
            "they are in the session"
        );
        // The live watch's transcript, fed the same lines, judges the same.
        let live = console_transcript(session.as_bytes(), n, 2);
        let direct = judge_transcript(&live, end, &exp(), &stopped.names, &[], &t).unwrap();
        assert_eq!(direct.to_string(), v.to_string());
        assert_eq!(live.steps.len(), 1);
        assert_eq!(live.kernel_lines(&live.steps[0]).collect::<Vec<_>>(), ["process:insmod"]);
    }
}
