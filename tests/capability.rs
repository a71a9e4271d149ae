//! The capability contract: every component imports only what its world in `wit/registry.wit`
//! declares, its world matches its capabilities in `spin.toml`, and it exports the HTTP handler.

use e2e::harness::{build_all, component_wasm, components, workspace_root};
use std::collections::BTreeMap;
use wit_parser::{decoding::DecodedWasm, AstItem, UnresolvedPackageGroup, WorldItem, WorldKey};

/// The interface every HTTP component exports.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.0";

/// A world's (or a component's) imports and exports, as full names such as
/// `wasi:io/streams@0.2.0`, or the plain name of a named import.
#[derive(Debug, Default)]
struct Surface {
    imports: Vec<String>,
    exports: Vec<String>,
}

/// Parses `wit/registry.wit` on its own: the interfaces of other packages stay unresolved, so
/// no WASI or Spin WIT files are needed; their names come from the package's foreign deps.
fn declared_worlds() -> BTreeMap<String, Surface> {
    let path = workspace_root().join("wit/registry.wit");
    let group = UnresolvedPackageGroup::parse_file(&path)
        .unwrap_or_else(|e| panic!("{} does not parse: {e:?}", path.display()));
    assert!(
        group.nested.is_empty(),
        "{}: nested packages are not expected",
        path.display()
    );
    let pkg = &group.main;
    assert_eq!(
        pkg.name.to_string(),
        "opsml:registry@0.1.0",
        "{}: package name",
        path.display()
    );
    // Interface id → "ns:pkg/name@version" for interfaces of other packages.
    let mut foreign = BTreeMap::new();
    for (package, items) in &pkg.foreign_deps {
        for (name, (item, _)) in items {
            if let AstItem::Interface(id) = item {
                let version = package
                    .version
                    .as_ref()
                    .map(|v| format!("@{v}"))
                    .unwrap_or_default();
                foreign.insert(
                    *id,
                    format!("{}:{}/{name}{version}", package.namespace, package.name),
                );
            }
        }
    }
    let name_of = |key: &WorldKey| -> String {
        match key {
            WorldKey::Name(name) => name.clone(),
            WorldKey::Interface(id) => foreign.get(id).cloned().unwrap_or_else(|| {
                // An interface of this package.
                let version = pkg
                    .name
                    .version
                    .as_ref()
                    .map(|v| format!("@{v}"))
                    .unwrap_or_default();
                let iface = pkg.interfaces[*id].name.as_deref().unwrap_or("<anonymous>");
                format!("{}:{}/{iface}{version}", pkg.name.namespace, pkg.name.name)
            }),
        }
    };
    let mut worlds = BTreeMap::new();
    for (_, world) in pkg.worlds.iter() {
        assert!(
            world.includes.is_empty(),
            "world {}: `include` is not supported by this check: list the imports",
            world.name
        );
        let mut surface = Surface::default();
        for (key, item) in &world.imports {
            // `use` brings types in, it is not an import of its own.
            if matches!(item, WorldItem::Type(_)) {
                continue;
            }
            surface.imports.push(name_of(key));
        }
        for key in world.exports.keys() {
            surface.exports.push(name_of(key));
        }
        worlds.insert(world.name.clone(), surface);
    }
    worlds
}

/// The top-level imports and exports of a built component.
fn component_surface(package: &str) -> Surface {
    let path = component_wasm(package);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let decoded = wit_parser::decoding::decode(&bytes)
        .unwrap_or_else(|e| panic!("{} is not a component: {e:?}", path.display()));
    let DecodedWasm::Component(resolve, world) = decoded else {
        panic!("{} is a WIT package, not a component", path.display());
    };
    let world = &resolve.worlds[world];
    let name_of = |key: &WorldKey| match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(id) => resolve.id_of(*id).expect("a named interface"),
    };
    Surface {
        imports: world
            .imports
            .iter()
            .filter(|(_, item)| !matches!(item, WorldItem::Type(_)))
            .map(|(key, _)| name_of(key))
            .collect(),
        exports: world.exports.keys().map(name_of).collect(),
    }
}

/// `ns:pkg/iface@1.2.3` → (`ns:pkg/iface`, Some(`1.2.3`)).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

/// Whether an import of version `wanted` links against a declaration of version `declared`,
/// as wasmtime's linker matches them: same major, and for 0.x the same minor (any patch); a
/// pre-release must match exactly.
fn versions_compatible(wanted: Option<&str>, declared: Option<&str>) -> bool {
    let (Some(wanted), Some(declared)) = (wanted, declared) else {
        return wanted == declared;
    };
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut parts = v.split('.');
        let t = (
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
        );
        parts.next().is_none().then_some(t)
    };
    match (parse(wanted), parse(declared)) {
        (Some((wa, wb, wc)), Some((da, db, dc))) => match (wa, wb) {
            (0, 0) => (wa, wb, wc) == (da, db, dc),
            (0, _) => (da, db) == (0, wb),
            _ => da == wa,
        },
        // Pre-releases or build metadata: only an exact match.
        _ => wanted == declared,
    }
}

/// The imports of `imports` that `declared` does not cover.
fn undeclared<'a>(imports: &'a [String], declared: &[String]) -> Vec<&'a str> {
    imports
        .iter()
        .filter(|import| {
            let (base, version) = split_version(import);
            !declared.iter().any(|d| {
                let (d_base, d_version) = split_version(d);
                d_base == base && versions_compatible(version, d_version)
            })
        })
        .map(String::as_str)
        .collect()
}

/// Every failure of one component against its world, empty when it keeps the contract.
fn contract_violations(component: &str, world: &Surface, built: &Surface) -> Vec<String> {
    let mut failures = Vec::new();
    let missing = undeclared(&built.imports, &world.imports);
    if !missing.is_empty() {
        failures.push(format!(
            "component `{component}` imports what its world in wit/registry.wit does not declare: {missing:?}"
        ));
    }
    let handler = [INCOMING_HANDLER.to_string()];
    if built
        .exports
        .iter()
        .all(|e| !undeclared(std::slice::from_ref(e), &handler).is_empty())
    {
        failures.push(format!(
            "component `{component}` does not export {INCOMING_HANDLER} (exports: {:?})",
            built.exports
        ));
    }
    let extra = undeclared(&built.exports, &world.exports);
    if !extra.is_empty() {
        failures.push(format!(
            "component `{component}` exports what its world does not declare: {extra:?}"
        ));
    }
    failures
}

#[test]
fn every_component_imports_only_what_its_world_declares() {
    build_all();
    let worlds = declared_worlds();
    let mut failures = Vec::new();
    for component in components() {
        let component = component.as_str();
        let Some(world) = worlds.get(component) else {
            failures.push(format!(
                "wit/registry.wit has no world `{component}` (worlds: {:?})",
                worlds.keys().collect::<Vec<_>>()
            ));
            continue;
        };
        let built = component_surface(component);
        failures.extend(contract_violations(component, world, &built));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The Spin interfaces a world declares follow from the component's capabilities in
/// `spin.toml`: the world grants no more (and no less) than the manifest does.
#[test]
fn worlds_match_the_capabilities_in_spin_toml() {
    let path = workspace_root().join("spin.toml");
    let manifest: toml::Table = std::fs::read_to_string(&path)
        .expect("spin.toml")
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let declared = manifest["component"].as_table().expect("[component.*]");
    let worlds = declared_worlds();
    let non_empty = |decl: &toml::Table, key: &str| match decl.get(key) {
        Some(toml::Value::Array(a)) => !a.is_empty(),
        Some(toml::Value::Table(t)) => !t.is_empty(),
        Some(_) => true,
        None => false,
    };
    let mut failures = Vec::new();
    for component in components() {
        let component = component.as_str();
        let decl = declared
            .get(component)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("spin.toml has no [component.{component}]"));
        let world = worlds
            .get(component)
            .unwrap_or_else(|| panic!("wit/registry.wit has no world `{component}`"));
        // `allowed_outbound_hosts` grants PostgreSQL through `postgres://` entries, MySQL
        // through `mysql://` ones and HTTP through the others.
        let outbound: Vec<&str> = decl
            .get("allowed_outbound_hosts")
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
            .unwrap_or_default();
        let postgres_hosts = outbound.iter().any(|h| h.starts_with("postgres://"));
        let mysql_hosts = outbound.iter().any(|h| h.starts_with("mysql://"));
        let http_hosts = outbound
            .iter()
            .any(|h| !h.starts_with("postgres://") && !h.starts_with("mysql://"));
        for (capability, interface) in [
            ("sqlite_databases", "fermyon:spin/sqlite@2.0.0"),
            ("key_value_stores", "fermyon:spin/key-value@2.0.0"),
            ("variables", "fermyon:spin/variables@2.0.0"),
            ("postgres hosts", "spin:postgres/postgres@4.0.0"),
            ("mysql hosts", "fermyon:spin/mysql@2.0.0"),
            ("mysql hosts", "fermyon:spin/rdbms-types@2.0.0"),
            ("http hosts", "wasi:http/outgoing-handler@0.2.0"),
        ] {
            let granted = match capability {
                "postgres hosts" => postgres_hosts,
                "mysql hosts" => mysql_hosts,
                "http hosts" => http_hosts,
                _ => non_empty(decl, capability),
            };
            let declared = world.imports.iter().any(|i| i == interface);
            if granted != declared {
                failures.push(format!(
                    "component `{component}`: spin.toml {} `{capability}` but its world {} {interface}",
                    if granted { "grants" } else { "does not grant" },
                    if declared { "imports" } else { "does not import" },
                ));
            }
        }
        // Nothing else from Spin, and no files or sockets.
        for import in &world.imports {
            let (base, _) = split_version(import);
            let known_spin = [
                "fermyon:spin/sqlite",
                "fermyon:spin/key-value",
                "fermyon:spin/variables",
                "spin:postgres/postgres",
                "fermyon:spin/mysql",
                "fermyon:spin/rdbms-types",
            ];
            if (base.starts_with("fermyon:") || base.starts_with("spin:"))
                && !known_spin.contains(&base)
                || base.starts_with("wasi:filesystem/")
                || base.starts_with("wasi:sockets/")
            {
                failures.push(format!(
                    "world `{component}` imports {import}, which no capability in spin.toml grants"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_undeclared_key_value_import_breaks_the_contract() {
    // The `get-card` world as written in wit/registry.wit, and a component that also opens a
    // key-value store.
    let worlds = declared_worlds();
    let world = &worlds["get-card"];
    let built = Surface {
        imports: names(&[
            "fermyon:spin/sqlite@2.0.0",
            "fermyon:spin/key-value@2.0.0",
            "wasi:io/streams@0.2.12",
            "wasi:http/types@0.2.12",
        ]),
        exports: names(&["wasi:http/incoming-handler@0.2.12"]),
    };
    let failures = contract_violations("get-card", world, &built);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].contains("[\"fermyon:spin/key-value@2.0.0\"]"),
        "the message names the undeclared import: {}",
        failures[0]
    );
    // Without it the same component keeps the contract.
    let mut ok = built;
    ok.imports.remove(1);
    assert_eq!(
        contract_violations("get-card", world, &ok),
        Vec::<String>::new()
    );
}

#[test]
fn a_component_without_the_http_handler_breaks_the_contract() {
    let worlds = declared_worlds();
    let built = Surface {
        imports: names(&["fermyon:spin/sqlite@2.0.0"]),
        exports: names(&["wasi:cli/run@0.2.0"]),
    };
    let failures = contract_violations("get-card", &worlds["get-card"], &built);
    assert!(
        failures
            .iter()
            .any(|f| f.contains("does not export wasi:http/incoming-handler")),
        "{failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f.contains("wasi:cli/run")),
        "{failures:#?}"
    );
}

#[test]
fn versions_match_as_the_linker_matches_them() {
    let declared = names(&[
        "wasi:io/streams@0.2.0",
        "fermyon:spin/sqlite@2.0.0",
        "wasi:http/types@0.2.0",
        "plain-func",
    ]);
    let imports = names(&[
        "wasi:io/streams@0.2.12",              // same 0.2 line: fine
        "wasi:io/streams@0.3.0",               // another minor of 0.x: not compatible
        "fermyon:spin/sqlite@2.9.1",           // same major: fine
        "fermyon:spin/sqlite@3.0.0",           // another major
        "spin:sqlite/sqlite@3.0.0",            // another package
        "wasi:http/types",                     // unversioned vs versioned
        "wasi:http/types@0.2.0-rc-2023-11-10", // pre-release: exact only
        "wasi:io/stream@0.2.0",                // another interface
        "plain-func",                          // a named import
        "wasi:io/streams",                     // no version at all
    ]);
    assert_eq!(
        undeclared(&imports, &declared),
        vec![
            "wasi:io/streams@0.3.0",
            "fermyon:spin/sqlite@3.0.0",
            "spin:sqlite/sqlite@3.0.0",
            "wasi:http/types",
            "wasi:http/types@0.2.0-rc-2023-11-10",
            "wasi:io/stream@0.2.0",
            "wasi:io/streams",
        ]
    );
    assert!(versions_compatible(Some("0.0.3"), Some("0.0.3")));
    assert!(!versions_compatible(Some("0.0.3"), Some("0.0.4")));
    assert!(versions_compatible(Some("1.2.0"), Some("1.0.0")));
}

#[test]
fn the_world_parser_reads_names_and_versions() {
    let worlds = declared_worlds();
    let upload = &worlds["upload"];
    for expected in [
        "fermyon:spin/sqlite@2.0.0",
        "fermyon:spin/key-value@2.0.0",
        "fermyon:spin/variables@2.0.0",
        "wasi:http/types@0.2.0",
    ] {
        assert!(
            upload.imports.iter().any(|i| i == expected),
            "{expected} in {:?}",
            upload.imports
        );
    }
    assert_eq!(upload.exports, names(&[INCOMING_HANDLER]));
    assert!(!worlds["get-card"]
        .imports
        .iter()
        .any(|i| i.contains("key-value")));
}
