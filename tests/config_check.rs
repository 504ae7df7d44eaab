//! `shardcat check` on the Mycat 1.6 sample and on broken copies of it: a summary and exit 0, or
//! `file:line: message` lines naming what is wrong and exit 1.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mycat16")
}

fn check(dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shardcat")).args(["check", "--config"]).arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of the fixture with `file` edited by replacing `from` with `to`; returns the dir and the
/// line number where `to` starts.
fn broken(file: &str, from: &str, to: &str) -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "fixture {file} lacks {from:?}");
    let edited = text.replacen(from, to, 1);
    let line = edited[..edited.find(to).unwrap()].matches('\n').count() + 1;
    std::fs::write(&path, edited).unwrap();
    (dir, line)
}

#[test]
fn the_mycat_sample_loads_and_prints_a_summary() {
    let (code, out, err) = check(&fixture());
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "schema TESTDB",
        "table travelrecord [sharded] rule=auto-sharding-long column=id function=rang-long (AutoPartitionByLong) dataNodes=dn1,dn2,dn3",
        "table company [global] dataNodes=dn1,dn2,dn3",
        "table hotnews [sharded] rule=mod-long",
        "table orders [child] parent=customer joinKey=customer_id parentKey=id",
        "table order_items [child] parent=orders joinKey=order_id parentKey=id",
        "table customer_addr [child]",
        "dataNode dn3 -> localhost1/db3",
        "writeHost hostM1 localhost:3306",
        "readHost hostS2 192.168.1.200:3306",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn rules_may_live_in_a_sibling_rules_folder() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = check(&root.join("config"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("rules: ") && out.contains("function=mod2 (PartitionByMod)"), "{out}");
}

#[test]
fn every_kind_of_mistake_is_reported_with_file_and_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("schema.xml", "dataHost=\"localhost1\" database=\"db2\"", "dataHost=\"nohost\" database=\"db2\"", "unknown dataHost 'nohost'"),
        ("schema.xml", "rule=\"mod-long\"", "rule=\"no-such-rule\"", "unknown rule 'no-such-rule'"),
        ("schema.xml", "dataNode=\"dn1,dn2\"\n\t\t\t   rule=\"sharding-by-intfile\" />", "dataNode=\"dn1,dn9\"\n\t\t\t   rule=\"sharding-by-intfile\" />", "unknown dataNode 'dn9'"),
        ("schema.xml", "<schema name=\"TESTDB\"", "<schema name=\"T2\" dataNode=\"dn1\"/>\n\t<schema name=\"TESTDB\"", "no-op"),
        ("schema.xml", "<childTable name=\"customer_addr\" primaryKey=\"ID\" joinKey=\"customer_id\"", "<childTable name=\"customer_addr\" primaryKey=\"ID\"", "needs both joinKey and parentKey"),
        ("schema.xml", "<table name=\"hotnews\" primaryKey=\"ID\" autoIncrement=\"true\" dataNode=\"dn1,dn2,dn3\"", "<table name=\"hotnews\" primaryKey=\"ID\" autoIncrement=\"true\" dataNode=\"dn1,dn2\"", "yields 3 partitions but the table has 2 dataNodes"),
        ("schema.xml", "<table name=\"goods\"", "<table name=\"company\"", "duplicate table 'company'"),
        ("rule.xml", "class=\"io.mycat.route.function.PartitionByMod\"", "class=\"io.mycat.route.function.PartitionByNothing\"", "unknown class"),
        ("rule.xml", "<function name=\"hash-int\"", "<function name=\"jch2\" class=\"PartitionByMod\"><property name=\"count\">2</property></function>\n\t<function name=\"jch2\"", "duplicate <function name=\"jch2\">"),
        ("rule.xml", "partition-hash-int.txt", "missing-map.txt", "cannot read map file"),
        ("autopartition-long.txt", "1000M-1500M=2", "1000M-15x00M=2", "is not a number"),
        ("schema.xml", "</dataHost>", "</dataHosts>", "XML syntax error"),
        ("server.xml", "<property name=\"schemas\">TESTDB</property>\n\t\t<property name=\"readOnly\">", "<property name=\"schemas\">NOPE</property>\n\t\t<property name=\"readOnly\">", "unknown schema 'NOPE'"),
        ("server.xml", "<property name=\"nonePasswordLogin\">0</property>", "<property name=\"transactionMode\">2pc</property>", "'2pc' is not xa or local"),
        ("schema.xml", "<writeHost host=\"hostM1\" url=\"localhost:3306\"", "<writeHost host=\"hostM1\" url=\"localhost:3306\" ssl=\"true\"", "ssl=\"true\" needs sslCa"),
        ("schema.xml", "<writeHost host=\"hostM1\" url=\"localhost:3306\"", "<writeHost host=\"hostM1\" url=\"localhost:3306\" ssl=\"true\" sslCa=\"no-ca.pem\"", "no-ca.pem: No such file"),
        ("schema.xml", "<writeHost host=\"hostM1\" url=\"localhost:3306\"", "<writeHost host=\"hostM1\" url=\"localhost:3306\" ssl=\"true\" sslCa=\"rule.xml\"", "no PEM certificate in it"),
    ];
    for (file, from, to, want) in cases {
        let (dir, line) = broken(file, from, to);
        let (code, out, err) = check(dir.path());
        if *want == "no-op" {
            assert_eq!(code, 0, "{out}{err}");
            continue;
        }
        assert_eq!(code, 1, "{want}: expected failure\n{out}{err}");
        let hit = out.lines().find(|l| l.contains(want)).unwrap_or_else(|| panic!("no {want:?} in:\n{out}"));
        let (path, rest) = hit.split_once(':').unwrap();
        let line_no: usize = rest.split(':').next().unwrap().parse().unwrap();
        if *want == "cannot read map file" {
            // the file named by mapFile is missing: reported at the function in rule.xml
            assert!(path.ends_with("rule.xml"), "{hit}");
            continue;
        }
        assert!(path.ends_with(file), "{hit}");
        // the element's first line; the edited attribute may sit on a following line of it
        assert!(line_no.abs_diff(line) <= 2, "{want}: reported line {line_no}, edit at {line}: {hit}");
    }
}

#[test]
fn unknown_attributes_and_properties_are_warned_about_by_name() {
    let (dir, _) = broken("schema.xml", "<table name=\"travelrecord\"", "<table nmae=\"x\" name=\"travelrecord\"");
    let (code, _, err) = check(dir.path());
    assert_eq!(code, 0);
    assert!(err.contains("warning: unknown attribute nmae of <table>"), "{err}");
    let (dir, _) = broken("server.xml", "<property name=\"useSqlStat\">", "<property name=\"useSqlStatt\">");
    let (code, _, err) = check(dir.path());
    assert_eq!(code, 0);
    assert!(err.contains("unknown system property 'useSqlStatt'"), "{err}");
}
