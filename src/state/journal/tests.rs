use super::*;

const BASE: u64 = 0x1234_5678_9abc_def0;

fn outbox(alert: &str) -> Vec<SinkOutbox> {
    vec![SinkOutbox {
        sink: "jsonl".into(),
        alerts: vec![serde_json::value::RawValue::from_string(alert.into()).unwrap()],
    }]
}

/// Commits delta `seq` of `state` holding `ops`.
fn commit(state: &Path, base: u64, seq: u32, ops: &[(u32, &str)], alert: &str) -> Committed {
    let mut w = DeltaWriter::create(state, base, seq).unwrap();
    for op in ops {
        w.append(op).unwrap();
    }
    assert_eq!(w.ops(), ops.len() as u64);
    w.commit(&outbox(alert)).unwrap()
}

fn read(state: &Path, base: u64) -> Result<(Vec<(u32, String)>, Replayed), StateError> {
    let mut ops = Vec::new();
    let r = replay(state, base, |op: (u32, String)| ops.push(op))?;
    Ok((ops, r))
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    n.sort();
    n
}

#[test]
fn deltas_replay_in_order_with_the_last_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("kmswatch.state");
    let one = commit(&state, BASE, 1, &[(1, "a"), (2, "b")], "1");
    let two = commit(&state, BASE, 2, &[(3, "c")], "2");
    assert_eq!((one.seq, one.ops, two.seq, two.ops), (1, 2, 2, 1));
    assert_eq!(
        names(dir.path()),
        ["kmswatch.state.delta-000001", "kmswatch.state.delta-000002"]
    );
    let (ops, r) = read(&state, BASE).unwrap();
    let want: Vec<(u32, String)> = vec![(1, "a".into()), (2, "b".into()), (3, "c".into())];
    assert_eq!(ops, want);
    assert_eq!((r.deltas, r.ops, r.bytes), (2, 3, one.bytes + two.bytes));
    let on_disk: u64 = names(dir.path())
        .iter()
        .map(|n| fs::metadata(dir.path().join(n)).unwrap().len())
        .sum();
    assert_eq!(r.bytes, on_disk);
    let outbox = r.outbox.unwrap();
    assert_eq!(outbox[0].alerts[0].get(), "2");

    // No deltas: nothing to fold, no outbox to replace the state file's.
    let (ops, r) = read(&dir.path().join("other.state"), BASE).unwrap();
    assert!(ops.is_empty() && r.deltas == 0 && r.outbox.is_none());
}

#[test]
fn a_delta_of_another_state_file_ends_the_chain_and_an_uncommitted_one_is_never_there() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    commit(&state, BASE, 1, &[(1, "a")], "1");
    // Left by a crash after the state file was replaced: it names the old file.
    commit(&state, BASE ^ 1, 2, &[(2, "stale")], "2");
    commit(&state, BASE, 3, &[(3, "after the gap")], "3");
    let mut w = DeltaWriter::create(&state, BASE, 4).unwrap();
    w.append(&(4, "uncommitted")).unwrap();
    assert!(names(dir.path()).contains(&"s.delta-000004.tmp".to_string()));
    let (ops, r) = read(&state, BASE).unwrap();
    assert_eq!(ops, [(1, "a".to_string())]);
    assert_eq!(r.deltas, 1);
    drop(w);
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".tmp")));

    // The stale ones go; delta 1 stays.
    fs::write(dir.path().join("s.delta-000009.tmp"), b"torn").unwrap();
    fs::write(dir.path().join("s.deltas"), b"not a delta").unwrap();
    remove_deltas(&state, 1);
    assert_eq!(names(dir.path()), ["s.delta-000001", "s.deltas"]);
    remove_deltas(&state, 0);
    assert_eq!(names(dir.path()), ["s.deltas"]);
}

#[test]
fn a_torn_or_altered_delta_of_this_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    commit(&state, BASE, 1, &[(1, "a"), (2, "b")], "1");
    let path = delta_path(&state, 1);
    let good = fs::read(&path).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut", good[..good.len() - 3].to_vec()),
        ("empty", Vec::new()),
    ];
    for at in [3, FIXED_LEN + 2, good.len() / 2, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x40;
        cases.push(("flipped", b));
    }
    for (what, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        let e = read(&state, BASE).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, StateError::Corrupt { .. }) && text.contains("s.delta-000001"),
            "{what}: {text}"
        );
    }

    // Named as delta 1 but written as delta 2.
    fs::remove_file(&path).unwrap();
    commit(&state, BASE, 2, &[(1, "a")], "1");
    fs::rename(delta_path(&state, 2), &path).unwrap();
    let e = read(&state, BASE).unwrap_err().to_string();
    assert!(e.contains("says delta 2 but its name says 1"), "{e}");
}

#[test]
fn a_delta_that_cannot_be_committed_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let mut w = DeltaWriter::create(&state, BASE, 1).unwrap();
    w.append(&(1, "a")).unwrap();
    // Something that is not a delta sits where it would go: the rename fails.
    let blocker = delta_path(&state, 1);
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), b"x").unwrap();
    let e = w.commit(&[]).unwrap_err().to_string();
    assert!(
        e.contains("s.delta-000001.tmp") && e.contains("committing"),
        "{e}"
    );
    assert_eq!(names(dir.path()), ["s.delta-000001"]);
}
