//! Tests for the semver module. The `cards/version` table was produced by running each case
//! against the opsml 2.2.4 server: existing versions inserted through `cards/create` with
//! descending timestamps in the listed order, then one `cards/version` call.

use super::*;

fn kind(err: &VersionError) -> &'static str {
    match err {
        VersionError::Invalid { .. } => "Invalid",
        VersionError::InvalidSupplied { .. } => "InvalidSupplied",
        VersionError::StoredInvalid { .. } => "StoredInvalid",
        VersionError::UnknownVersionType(_) => "UnknownVersionType",
        VersionError::InvalidTag { .. } => "InvalidTag",
        VersionError::NoIncrement { .. } => "NoIncrement",
        VersionError::Overflow { .. } => "Overflow",
        VersionError::AlreadyExists { .. } => "AlreadyExists",
        VersionError::ReleaseCandidateOfReleased { .. } => "ReleaseCandidateOfReleased",
    }
}

type Case<'a> = (
    &'a [&'a str],
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Result<&'a str, &'a str>,
);

/// (existing newest first, version_type, supplied version, pre_tag, build_tag, expected)
#[rustfmt::skip]
const REFERENCE_CASES: &[Case] = &[
    (&[], "major", None, None, None, Ok("1.0.0")), // ref: 200 1.0.0
    (&[], "minor", None, None, None, Ok("1.0.0")), // ref: 200 1.0.0
    (&[], "patch", None, None, None, Ok("1.0.0")), // ref: 200 1.0.0
    (&[], "pre", None, None, None, Ok("1.0.0-rc.1")), // ref: 200 1.0.0-rc.1
    (&[], "build", None, None, None, Ok("1.0.0+build.1")), // ref: 200 1.0.0+build.1
    (&[], "pre_build", None, None, None, Ok("1.0.0-rc.1+build.1")), // ref: 200 1.0.0-rc.1+build.1
    (&[], "minor", Some("2"), None, None, Ok("2.0.0")), // ref: 200 2.0.0
    (&[], "patch", Some("2.3"), None, None, Ok("2.3.0")), // ref: 200 2.3.0
    (&[], "major", Some("2.3.4"), None, None, Ok("2.3.4")), // ref: 200 2.3.4
    (&[], "major", Some("2.3.4-rc.1"), None, None, Ok("2.3.4")), // ref: 200 2.3.4
    (&[], "pre", Some("2.3.4"), None, None, Ok("2.3.4-rc.1")), // ref: 200 2.3.4-rc.1
    (&[], "pre", Some("1.2"), None, None, Ok("1.2.0-rc.1")), // ref: 200 1.2.0-rc.1
    (&[], "build", Some("2.3.4+build.5"), None, None, Ok("2.3.4+build.1")), // ref: 200 2.3.4+build.1
    (&[], "pre_build", Some("3"), None, None, Ok("3.0.0-rc.1+build.1")), // ref: 200 3.0.0-rc.1+build.1
    (&["1.0.0"], "major", None, None, None, Ok("2.0.0")), // ref: 200 2.0.0
    (&["1.0.0"], "minor", None, None, None, Ok("1.1.0")), // ref: 200 1.1.0
    (&["1.0.0"], "patch", None, None, None, Ok("1.0.1")), // ref: 200 1.0.1
    (&["1.0.0"], "pre", None, None, None, Ok("1.0.0-rc.1")), // ref: 200 1.0.0-rc.1
    (&["1.0.0"], "build", None, None, None, Ok("1.0.0+build.1")), // ref: 200 1.0.0+build.1
    (&["1.0.0"], "pre_build", None, None, None, Ok("1.0.0-rc.1+build.1")), // ref: 200 1.0.0-rc.1+build.1
    (&["1.1.0-rc.1", "1.0.0"], "minor", None, None, None, Ok("1.1.0")), // ref: 200 1.1.0
    (&["1.1.0-rc.1", "1.0.0"], "major", None, None, None, Ok("1.1.0")), // ref: 200 1.1.0
    (&["1.1.0-rc.1", "1.0.0"], "patch", None, None, None, Ok("1.1.0")), // ref: 200 1.1.0
    (&["1.0.0-rc.2", "1.0.0-rc.1"], "patch", None, None, None, Ok("1.0.0")), // ref: 200 1.0.0
    (&["1.0.0-rc.2", "1.0.0-rc.1"], "major", None, None, None, Ok("1.0.0")), // ref: 200 1.0.0
    (&["1.0.0-rc.1"], "pre", None, None, None, Ok("1.0.0-rc.2")), // ref: 200 1.0.0-rc.2
    (&["1.0.0-rc.9"], "pre", None, None, None, Ok("1.0.0-rc.10")), // ref: 200 1.0.0-rc.10
    (&["1.0.0-rc.1+build.3"], "pre", None, None, None, Ok("1.0.0-rc.2")), // ref: 200 1.0.0-rc.2
    (&["1.0.0-rc.1+build.3"], "build", None, None, None, Ok("1.0.0-rc.1+build.4")), // ref: 200 1.0.0-rc.1+build.4
    (&["1.0.0-rc.1"], "pre_build", None, None, None, Ok("1.0.0-rc.2+build.1")), // ref: 200 1.0.0-rc.2+build.1
    (&["1.0.0-alpha.1"], "pre", None, None, None, Ok("1.0.0-alpha.2")), // ref: 200 1.0.0-alpha.2
    (&["1.0.0", "1.0.0-rc.1"], "pre", None, None, None, Ok("1.0.0-rc.2")), // ref: 200 1.0.0-rc.2
    (&["1.0.0+build.1", "1.0.0"], "build", None, None, None, Ok("1.0.0+build.2")), // ref: 200 1.0.0+build.2
    (&["1.0.0", "1.0.0+build.1"], "build", None, None, None, Ok("1.0.0+build.2")), // ref: 200 1.0.0+build.2
    (&["1.0.0+build.2", "1.0.0+build.1"], "build", None, None, None, Ok("1.0.0+build.3")), // ref: 200 1.0.0+build.3
    (&["10.0.0", "1.0.0"], "minor", Some("1"), None, None, Ok("1.1.0")), // ref: 10.1.0 (text prefix "1" took 10.0.0)
    (&["1.2.5", "1.3.0", "1.20.1"], "patch", Some("1.2"), None, None, Ok("1.2.6")), // ref: 1.20.2 (text prefix "1.2" took 1.20.1)
    (&["2.0.0", "1.4.0"], "minor", Some("1"), None, None, Ok("1.5.0")), // ref: 200 1.5.0
    (&["2.0.0", "1.4.0"], "patch", Some("1"), None, None, Ok("1.4.1")), // ref: 200 1.4.1
    (&["2.0.0", "1.4.0"], "major", Some("1"), None, None, Ok("3.0.0")), // ref: 200 3.0.0
    (&["2.0.0", "1.4.0"], "minor", Some("5.1"), None, None, Ok("5.1.0")), // ref: 200 5.1.0
    (&["1.2.3-rc.1", "1.2.4"], "pre", Some("1.2.3"), None, None, Ok("1.2.3-rc.2")), // ref: 200 1.2.3-rc.2
    (&["1.2.3", "1.2.4"], "pre", Some("1.2.3"), None, None, Ok("1.2.3-rc.1")), // ref: 200 1.2.3-rc.1
    (&["1.2.3"], "build", Some("1.2.3"), None, None, Ok("1.2.3+build.1")), // ref: 200 1.2.3+build.1
    (&["1.2.0"], "pre", Some("1.2"), None, None, Ok("1.2.0-rc.1")), // ref: 200 1.2.0-rc.1
    (&["1.0.0"], "pre", None, Some("beta"), None, Ok("1.0.0-beta.1")), // ref: 200 1.0.0-beta.1
    (&["1.0.0"], "pre", None, Some(""), None, Ok("1.0.0-rc.1")), // ref: 200 1.0.0-rc.1
    (&["1.0.0"], "build", None, None, Some(""), Ok("1.0.0+build.1")), // ref: 200 1.0.0+build.1
    (&[], "pre", None, Some("rc.1"), None, Ok("1.0.0-rc.1.1")), // ref: 200 1.0.0-rc.1.1
    (&[], "pre", None, Some("rc9"), None, Ok("1.0.0-rc9.1")), // ref: 200 1.0.0-rc9.1
    (&[], "pre", None, Some("rc.09"), None, Err("InvalidTag")), // ref: 200 1.0.0-rc.09.1
    (&[], "pre", None, Some("rc.099"), None, Err("InvalidTag")), // ref: 200 1.0.0-rc.099.1
    (&[], "build", None, None, Some("b.0099"), Ok("1.0.0+b.0099.1")), // ref: 200 1.0.0+b.0099.1
    (&[], "minor", None, Some("rc.1"), Some("b.1"), Ok("1.0.0")), // ref: 200 1.0.0
    (&["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0", "1.7.0", "1.8.0", "1.9.0", "1.10.0", "1.11.0", "1.12.0", "1.13.0", "1.14.0", "1.15.0", "1.16.0", "1.17.0", "1.18.0", "1.19.0", "5.0.0"], "minor", None, None, None, Ok("5.1.0")), // ref: 1.20.0 (it read only the 20 newest rows)
    (&["not-a-version"], "minor", None, None, None, Err("StoredInvalid")), // ref: 500
    (&[], "major", Some("01"), None, None, Err("InvalidSupplied")), // ref: 200 01.0.0
    (&[], "major", Some("1.2.3.4"), None, None, Err("InvalidSupplied")), // ref: 422
    (&[], "major", Some("1.x"), None, None, Err("InvalidSupplied")), // ref: 422
    (&[], "major", Some(""), None, None, Err("InvalidSupplied")), // ref: 422
    (&[], "major", Some("01.2.3"), None, None, Err("InvalidSupplied")), // ref: 422
    (&[], "MAJOR", None, None, None, Err("UnknownVersionType")), // ref: 422
    (&[], "pre", None, Some("bad tag!"), None, Err("InvalidTag")), // ref: 200 1.0.0-bad tag!.1
    (&["1.0.0"], "major", Some("1.0.0"), None, None, Ok("2.0.0")), // ref: 200 2.0.0
    (&[], "major", Some("1.2.3-rc.1+b.1"), None, None, Ok("1.2.3")), // ref: 200 1.2.3
    (&["1.0.0+b.0009"], "build", None, None, None, Ok("1.0.0+b.0010")), // ref: 200 1.0.0+b.0010
    (&["1.0.0+b.0099"], "build", None, None, None, Ok("1.0.0+b.0100")), // ref: 200 1.0.0+b.0100
    (&["1.0.0+b.99"], "build", None, None, None, Ok("1.0.0+b.100")), // ref: 200 1.0.0+b.100
    (&["1.0.0-x.7.z"], "pre", None, None, None, Ok("1.0.0-x.8.z")), // ref: 200 1.0.0-x.8.z
    (&["1.0.0-rc.1", "2.0.0-rc.1"], "minor", None, None, None, Ok("2.0.0")), // ref: 200 2.0.0
    (&["1.0.0-rc.1", "1.0.0"], "minor", None, None, None, Ok("1.1.0")), // ref: 200 1.1.0
    (&["1.0.0-rc.1", "1.0.0"], "patch", Some("1.0.0"), None, None, Ok("1.0.1")), // ref: 200 1.0.1
    (&["1.0.0-rc.10", "1.0.0-rc.9"], "pre", None, None, None, Ok("1.0.0-rc.11")), // ref: 200 1.0.0-rc.11
    (&["1.0.0-rc.9", "1.0.0-rc.10"], "pre", None, None, None, Ok("1.0.0-rc.11")), // ref: 200 1.0.0-rc.11
    (&["1.0.0-beta.1", "1.0.0-alpha.5"], "pre", None, None, None, Ok("1.0.0-beta.2")), // ref: 200 1.0.0-beta.2
    (&["1.1.0", "1.0.0"], "major", Some("9"), None, None, Ok("2.0.0")), // ref: 200 2.0.0
    (&[], "patch", Some("1.2.3-rc.1"), None, None, Ok("1.2.3")), // ref: 200 1.2.3
    (&["1.0.0-rc.1"], "build", Some("1.0.0"), None, None, Ok("1.0.0-rc.1+build.1")), // ref: 200 1.0.0-rc.1+build.1
    (&["1.0.0-rc.1"], "pre", None, Some("beta"), None, Ok("1.0.0-rc.2")), // ref: 200 1.0.0-rc.2
];

/// A case's `cards/version` request.
fn request_of(case: &Case) -> Result<VersionRequest, VersionError> {
    let (_, version_type, supplied, pre_tag, build_tag, _) = *case;
    let mut request = VersionRequest::new(VersionType::parse(version_type)?);
    if let Some(v) = supplied {
        request = request.with_version(v);
    }
    if let Some(t) = pre_tag {
        request = request.with_pre_tag(t);
    }
    if let Some(t) = build_tag {
        request = request.with_build_tag(t);
    }
    Ok(request)
}

fn run(case: &Case) -> Result<String, &'static str> {
    let request = request_of(case).map_err(|e| kind(&e))?;
    next_version(case.0, &request)
        .map(|v| v.to_string())
        .map_err(|e| kind(&e))
}

#[test]
fn next_version_matches_reference_server() {
    for case in REFERENCE_CASES {
        let expected = case.5.map(str::to_string);
        assert_eq!(run(case), expected, "case {case:?}");
    }
}

#[test]
fn next_version_never_loops() {
    // The reference hangs on these (bumping a tag without digits never leaves `existing`).
    let cases: &[(&[&str], VersionType)] = &[
        (&["1.0.0-alpha"], VersionType::Pre),
        (&["1.0.0-1", "1.0.0-alpha"], VersionType::Pre),
        (&["1.0.0+build"], VersionType::Build),
    ];
    for (existing, version_type) in cases {
        let err = next_version(existing, &VersionRequest::new(*version_type)).unwrap_err();
        assert!(matches!(err, VersionError::NoIncrement { .. }), "{err}");
        assert_eq!(err.status(), Status::Conflict);
    }
    // pre_build still progresses through the build part, as in the reference.
    let v = next_version(
        &["1.0.0-alpha"],
        &VersionRequest::new(VersionType::PreBuild),
    )
    .unwrap();
    assert_eq!(v.to_string(), "1.0.0-alpha+build.1");
}

#[test]
fn candidates_are_chosen_by_version_numbers() {
    let table: &[(&str, VersionType, &str, bool)] = &[
        ("1", VersionType::Major, "7.0.0", true),
        ("1", VersionType::Minor, "1.9.0", true),
        ("1", VersionType::Minor, "10.0.0", false),
        ("1.2", VersionType::Patch, "1.2.9", true),
        ("1.2", VersionType::Patch, "1.20.0", false),
        ("1.2", VersionType::Minor, "1.5.0", true),
        ("1.2.3-rc.1", VersionType::Patch, "1.2.7", true),
        ("1.2.3-rc.1+b.1", VersionType::Pre, "1.2.3-rc.4", true),
        ("1.2.3", VersionType::Pre, "1.2.30", false),
        ("1.2", VersionType::Build, "1.2.0+build.1", true),
        ("4", VersionType::PreBuild, "40.0.0", false),
    ];
    for (supplied, version_type, existing, expected) in table {
        let scope = VersionRequest::new(*version_type)
            .with_version(*supplied)
            .scope()
            .unwrap();
        let existing = Version::parse(existing).unwrap();
        assert_eq!(
            scope.contains(&existing),
            *expected,
            "{supplied:?} {version_type} {existing}"
        );
    }
}

#[test]
fn every_existing_version_counts() {
    // 25 newer rows, then the only `3.*` one.
    let mut existing: Vec<String> = (0..25).map(|i| format!("1.{i}.0")).collect();
    existing.push("3.4.0".into());
    let request = VersionRequest::new(VersionType::Minor).with_version("3");
    assert_eq!(
        next_version(&existing, &request).unwrap().to_string(),
        "3.5.0"
    );
    let request = VersionRequest::new(VersionType::Minor).with_version("1");
    assert_eq!(
        next_version(&existing, &request).unwrap().to_string(),
        "1.25.0"
    );
    let request = VersionRequest::new(VersionType::Minor);
    assert_eq!(
        next_version(&existing, &request).unwrap().to_string(),
        "3.5.0"
    );
}

#[test]
fn parse_valid() {
    type Row<'a> = (&'a str, u64, u64, u64, Option<&'a str>, Option<&'a str>);
    let table: &[Row] = &[
        ("0.0.0", 0, 0, 0, None, None),
        ("1.2.3", 1, 2, 3, None, None),
        ("10.20.30-rc.1", 10, 20, 30, Some("rc.1"), None),
        (
            "1.0.0-alpha-beta.0.x-1",
            1,
            0,
            0,
            Some("alpha-beta.0.x-1"),
            None,
        ),
        ("1.0.0+build.007", 1, 0, 0, None, Some("build.007")),
        ("1.0.0-0a.00a+-", 1, 0, 0, Some("0a.00a"), Some("-")),
        ("1.0.0--", 1, 0, 0, Some("-"), None),
        ("18446744073709551615.0.0", u64::MAX, 0, 0, None, None),
    ];
    for (input, major, minor, patch, pre, build) in table {
        let v = Version::parse(input).unwrap();
        assert_eq!(
            (v.major(), v.minor(), v.patch(), v.pre(), v.build()),
            (*major, *minor, *patch, *pre, *build),
            "{input}"
        );
        assert_eq!(v.to_string(), *input, "display round-trips");
    }
}

#[test]
fn parse_invalid() {
    let table = [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "v1.2.3",
        " 1.2.3",
        "1.2.3 ",
        "1.2.3\n",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-01",
        "1.2.3-rc..1",
        "1.2.3-rc.1+",
        "1.2.3+b..1",
        "1.2.3-rc_1",
        "1.2.3+b+c",
        "1.2.3-é",
        "a.b.c",
        "-1.2.3",
        "1.-2.3",
        "18446744073709551616.0.0",
    ];
    for input in table {
        let err = Version::parse(input).unwrap_err();
        assert!(
            matches!(err, VersionError::Invalid { .. }),
            "{input:?}: {err:?}"
        );
        assert_eq!(err.status().code(), 422);
        assert!(
            err.to_string().contains("is not valid SemVer string"),
            "{err}"
        );
    }
}

#[test]
fn sort_matches_reference() {
    // Input and output of opsml 2.2.4's SemVerUtils.sort_semvers.
    let input = [
        "1.0.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0+build.1",
        "2.0.0",
        "1.10.0",
        "1.2.0",
        "1.0.0-0",
        "1.0.0-1",
        "1.0.0-A",
        "1.0.0-a",
        "1.0.0--",
        "1.0.0-alpha.0a",
        "1.0.0-alpha.1.1",
        "10.0.0-rc.2",
        "1.0.0+z",
        "0.0.1",
    ];
    let expected = [
        "10.0.0-rc.2",
        "2.0.0",
        "1.10.0",
        "1.2.0",
        "1.0.0+z",
        "1.0.0+build.1",
        "1.0.0",
        "1.0.0-rc.1",
        "1.0.0-beta.11",
        "1.0.0-beta.2",
        "1.0.0-beta",
        "1.0.0-alpha.beta",
        "1.0.0-alpha.0a",
        "1.0.0-alpha.1.1",
        "1.0.0-alpha.1",
        "1.0.0-alpha",
        "1.0.0-a",
        "1.0.0-A",
        "1.0.0--",
        "1.0.0-1",
        "1.0.0-0",
        "0.0.1",
    ];
    let sorted: Vec<String> = sort_desc_strs(&input)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(sorted, expected);
}

#[test]
fn precedence_and_ord() {
    let v = |s: &str| Version::parse(s).unwrap();
    assert_eq!(v("1.0.0+a").cmp_precedence(&v("1.0.0+b")), Ordering::Equal);
    assert_ne!(v("1.0.0+a"), v("1.0.0+b"));
    assert!(v("1.0.0+a") < v("1.0.0+b"));
    assert!(v("1.0.0") < v("1.0.0+a"));
    assert!(v("1.0.0-rc.1") < v("1.0.0"));
    assert!(v("1.0.0-rc.9") < v("1.0.0-rc.10"));
    assert!(v("1.0.0-rc.1") < v("1.0.0-rc.1.0"));
    assert!(v("1.0.0-99999999999999999999999") < v("1.0.0-100000000000000000000000"));
    assert!(v("1.9.0") < v("1.10.0"));
}

#[test]
fn increments() {
    let table = [
        ("rc.0", "rc.1"),
        ("rc.9", "rc.10"),
        ("b.0009", "b.0010"),
        ("b.0099", "b.0100"),
        ("b.99", "b.100"),
        ("x.7.z", "x.8.z"),
        ("rc9.0", "rc9.1"),
        ("rc009", "rc010"),
        ("0999", "1000"),
        ("alpha", "alpha"),
        ("99999999999999999999999", "100000000000000000000000"),
    ];
    for (input, expected) in table {
        assert_eq!(increment_last_number(input), expected, "{input}");
    }
}

#[test]
fn bumps() {
    let v = |s: &str| Version::parse(s).unwrap();
    let s = |r: Result<Version, VersionError>| r.unwrap().to_string();
    assert_eq!(s(v("1.2.3-rc.1+b.1").bump_major()), "2.0.0");
    assert_eq!(s(v("1.2.3-rc.1+b.1").bump_minor()), "1.3.0");
    assert_eq!(s(v("1.2.3-rc.1+b.1").bump_patch()), "1.2.4");
    assert_eq!(s(v("1.2.3+b.1").bump_prerelease("rc")), "1.2.3-rc.1");
    assert_eq!(
        s(v("1.2.3-beta.1+b.1").bump_prerelease("rc")),
        "1.2.3-beta.2"
    );
    assert_eq!(s(v("1.2.3-rc.1").bump_build("")), "1.2.3-rc.1+build.1");
    assert_eq!(s(v("1.2.3").bump_prerelease("")), "1.2.3-rc.1");
    let max = Version::new(u64::MAX, 0, 0);
    assert!(matches!(
        max.bump_major(),
        Err(VersionError::Overflow { .. })
    ));
    assert_eq!(
        v("1.0.0").bump_prerelease("a b").unwrap_err(),
        VersionError::InvalidTag {
            generated: "1.0.0-a b.1".into()
        }
    );
}

#[test]
fn version_type_parsing() {
    for t in VersionType::ALL {
        assert_eq!(VersionType::parse(t.as_str()), Ok(t));
    }
    assert!(VersionType::parse("Major").is_err());
    assert!(VersionType::parse(" major").is_err());
    assert_eq!(
        VersionType::parse_lenient(" PRE_build "),
        Ok(VersionType::PreBuild)
    );
    assert!(VersionType::parse_lenient("prebuild").is_err());
    let json = serde_json::to_string(&VersionType::PreBuild).unwrap();
    assert_eq!(json, "\"pre_build\"");
    assert_eq!(
        serde_json::from_str::<VersionType>("\"minor\"").unwrap(),
        VersionType::Minor
    );
    assert!(serde_json::from_str::<VersionType>("\"Minor\"").is_err());
}

#[test]
fn supplied_versions() {
    let ok: &[(&str, &str, &str)] = &[
        // (input, valid_version, base version)
        ("1", "1", "1.0.0"),
        ("1.2", "1.2", "1.2.0"),
        ("0", "0", "0.0.0"),
        ("1.2.3", "1.2.3", "1.2.3"),
        ("1.2.3-rc.1+b.4", "1.2.3", "1.2.3"),
    ];
    for (input, valid, base) in ok {
        let s = SuppliedVersion::parse(input).unwrap();
        assert_eq!(s.valid_version(), *valid);
        assert_eq!(s.base_version().to_string(), *base);
    }
    for bad in [
        "", "a", "1.x", "1.2-rc", "01", "1.02", "1.2.3.4", "1.2.3-", " 1", "1.",
    ] {
        let err = SuppliedVersion::parse(bad).unwrap_err();
        assert_eq!(
            err,
            VersionError::InvalidSupplied {
                input: bad.to_string()
            }
        );
        assert_eq!(err.status().code(), 422);
    }
    assert_eq!(
        SuppliedVersion::parse("1.x").unwrap_err().to_string(),
        "Version 1.x is not a valid semver or partial semver"
    );
}

#[test]
fn supplied_version_checks() {
    let existing = ["1.2.3", "1.2.4-rc.1", "1.2.30"];
    let table: &[(&str, Result<(), &str>)] = &[
        ("1.2.5", Ok(())),
        ("1.2.4", Ok(())),
        ("1.2.4-rc.2", Ok(())),
        ("1.2", Ok(())),
        ("1.2.3", Err("AlreadyExists")),
        ("1.2.3-rc.1", Err("ReleaseCandidateOfReleased")),
        ("1.2.4-rc.1", Err("AlreadyExists")),
        // `LIKE '1.2.3%'` also selects 1.2.30, a release: the reference refuses this rc too.
        ("1.2.3-rc.5", Err("ReleaseCandidateOfReleased")),
        ("1.2.3+b.1", Ok(())),
    ];
    for (supplied, expected) in table {
        assert_eq!(
            check_supplied_version(&existing, supplied).map_err(|e| kind(&e)),
            *expected,
            "{supplied}"
        );
    }
}

#[test]
fn serde_as_string() {
    let v = Version::parse("1.2.3-rc.1+b.2").unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), "\"1.2.3-rc.1+b.2\"");
    let back: Version = serde_json::from_str("\"1.2.3-rc.1+b.2\"").unwrap();
    assert_eq!(back, v);
    assert!(serde_json::from_str::<Version>("\"1.2\"").is_err());
}

#[test]
fn error_statuses() {
    let stored = next_version(&["x"], &VersionRequest::new(VersionType::Minor)).unwrap_err();
    assert_eq!(stored.status().code(), 500);
    assert_eq!(
        VersionError::AlreadyExists {
            version: "1.0.0".into()
        }
        .status()
        .code(),
        409
    );
}

/// What a store sends for a narrowed `cards/version`: the versions whose numbers are at least
/// the highest numbers in scope (none when nothing is in scope).
fn narrowed<'a>(existing: &[&'a str], scope: &VersionScope) -> Vec<&'a str> {
    let numbers = |v: &Version| (v.major(), v.minor(), v.patch());
    let parsed: Vec<(&str, Version)> = existing
        .iter()
        .map(|s| (*s, Version::parse(s).unwrap()))
        .collect();
    let Some(highest) = parsed
        .iter()
        .filter(|(_, v)| scope.contains(v))
        .map(|(_, v)| numbers(v))
        .max()
    else {
        return Vec::new();
    };
    parsed
        .into_iter()
        .filter(|(_, v)| numbers(v) >= highest)
        .map(|(s, _)| s)
        .collect()
}

/// The store's narrowed answer gives the same next version as all of a card's versions: on
/// every reference case, and on many generated histories.
#[test]
fn next_version_from_the_narrowed_versions_is_the_same() {
    for case in REFERENCE_CASES {
        let existing = case.0;
        let (Ok(request), true) = (
            request_of(case),
            existing.iter().all(|v| Version::parse(v).is_ok()),
        ) else {
            continue;
        };
        let Ok(scope) = request.scope() else { continue };
        assert_eq!(
            next_version(&narrowed(existing, &scope), &request),
            next_version(existing, &request),
            "case {case:?}"
        );
    }

    let pool = [
        "0.1.0",
        "1.0.0",
        "1.0.0-rc.1",
        "1.0.0-rc.2",
        "1.0.0+build.1",
        "1.0.1",
        "1.1.0-rc.1",
        "1.1.0",
        "1.2.0",
        "1.2.1-rc.1+build.2",
        "1.2.1",
        "2.0.0-rc.1",
        "2.0.0",
        "2.1.0",
        "3.0.0-rc.1",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_random = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2_000 {
        let existing: Vec<&str> = pool
            .iter()
            .copied()
            .filter(|_| next_random() % 3 == 0)
            .collect();
        let version_type = VersionType::ALL[(next_random() % 6) as usize];
        let mut request = VersionRequest::new(version_type);
        match next_random() % 5 {
            0 => {}
            1 => request = request.with_version("1"),
            2 => request = request.with_version("1.2"),
            3 => request = request.with_version("1.0.0"),
            _ => request = request.with_version("2"),
        }
        let scope = request.scope().unwrap();
        assert_eq!(
            next_version(&narrowed(&existing, &scope), &request),
            next_version(&existing, &request),
            "{existing:?} {request:?}"
        );
    }
}
