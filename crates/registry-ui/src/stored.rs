//! What the opsml client keeps only in a card's files, read for its pages: a model's
//! `model-metadata.json` (interface, ONNX, sample data, feature schema), a data card's
//! interface details and a run's parameters (both in the card's `card.joblib`).

use crate::audit_card::card_joblib_fields;
use crate::pages::query_string;
use crate::Site;
use registry_app::cards::StoredCard;
use registry_app::files::read_current;
use registry_core::write_path::client_path;
use serde_json::Value;
use serde_pickle::{HashableValue, Value as Pickled};

/// Larger metadata files are not opened for a page (the client's are a few kB).
pub(crate) const MAX_SMALL_FILE_BYTES: u64 = 16 << 20;

/// The card's file `name` when there is one; a failure is a sentence for the page.
fn read_if_stored(site: &Site, card: &StoredCard, name: &str) -> Result<Option<Vec<u8>>, String> {
    read_current(site.ctx, site.caller, card, name, MAX_SMALL_FILE_BYTES)
        .map(|found| found.map(|(_, bytes)| bytes))
        .map_err(|e| format!("{}/{name} could not be read: {}", card.folder(), e.detail))
}

/// One line of a model's metadata, linked when it names a stored file.
pub struct MetadataRow {
    pub key: &'static str,
    pub value: String,
    pub href: Option<String>,
}

pub struct FeatureRow {
    pub side: &'static str,
    pub name: String,
    pub feature_type: String,
    pub shape: String,
}

/// A model's `model-metadata.json`, as a person reads it.
pub struct ModelMetadata {
    pub rows: Vec<MetadataRow>,
    pub features: Vec<FeatureRow>,
}

/// Where a storage path the client wrote can be downloaded, when it is one.
fn download_href(path: &str) -> Option<String> {
    let key = path
        .trim_start_matches("opsml-root:/")
        .trim_start_matches('/');
    key.starts_with("OPSML_").then(|| {
        format!(
            "/opsml/files/download{}",
            query_string(&[("path", &client_path(key))])
        )
    })
}

fn feature_rows(schema: &Value, field: &str, side: &'static str) -> Vec<FeatureRow> {
    let Some(features) = schema.get(field).and_then(Value::as_object) else {
        return Vec::new();
    };
    features
        .iter()
        .map(|(name, feature)| FeatureRow {
            side,
            name: name.clone(),
            feature_type: feature
                .get("feature_type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            shape: feature
                .get("shape")
                .map(Value::to_string)
                .unwrap_or_default(),
        })
        .collect()
}

/// The model's metadata from its `model-metadata.json`; `None` when the client stored none.
pub fn model_metadata(site: &Site, card: &StoredCard) -> Result<Option<ModelMetadata>, String> {
    let path = format!("{}/model-metadata.json", card.folder());
    let Some(bytes) = read_if_stored(site, card, "model-metadata.json")? else {
        return Ok(None);
    };
    let json: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{path} is not the JSON the opsml client writes: {e}"))?;
    let text = |field: &str| match json.get(field) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    const SHOWN: [(&str, &str); 11] = [
        ("interface", "model_interface"),
        ("class", "model_class"),
        ("type", "model_type"),
        ("model file", "model_uri"),
        ("ONNX version", "onnx_version"),
        ("ONNX file", "onnx_uri"),
        ("sample data", "sample_data_uri"),
        ("preprocessor", "preprocessor_name"),
        ("tokenizer", "tokenizer_name"),
        ("feature extractor", "feature_extractor_name"),
        ("opsml version", "opsml_version"),
    ];
    let mut rows: Vec<MetadataRow> = SHOWN
        .iter()
        .filter_map(|(label, field)| {
            let value = text(field)?;
            Some(MetadataRow {
                key: label,
                href: field
                    .ends_with("_uri")
                    .then(|| download_href(&value))
                    .flatten(),
                value,
            })
        })
        .collect();
    if text("onnx_uri").is_none() {
        rows.push(MetadataRow {
            key: "ONNX file",
            value: "none: the model was registered without ONNX".into(),
            href: None,
        });
    }
    let schema = json.get("data_schema").cloned().unwrap_or(Value::Null);
    if let Some(data_type) = schema.get("data_type").and_then(Value::as_str) {
        rows.push(MetadataRow {
            key: "sample data type",
            value: data_type.to_string(),
            href: None,
        });
    }
    let mut features = feature_rows(&schema, "input_features", "input");
    features.extend(feature_rows(&schema, "output_features", "output"));
    Ok(Some(ModelMetadata { rows, features }))
}

/// A pickled tree as JSON, to read fields by name (keys that are not text become text).
fn pickled_json(value: &Pickled) -> Value {
    match value {
        Pickled::None => Value::Null,
        Pickled::Bool(b) => Value::Bool(*b),
        Pickled::I64(n) => Value::from(*n),
        Pickled::F64(f) => Value::from(*f),
        Pickled::String(s) => Value::String(s.clone()),
        Pickled::List(items) | Pickled::Tuple(items) => {
            Value::Array(items.iter().map(pickled_json).collect())
        }
        Pickled::Dict(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        HashableValue::String(s) => s.clone(),
                        HashableValue::I64(n) => n.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, pickled_json(v))
                })
                .collect(),
        ),
        other => Value::String(format!("{other:?}")),
    }
}

/// One feature of a data card: its type and the description the data scientist gave.
pub struct DataFeature {
    pub name: String,
    pub feature_type: String,
    pub shape: String,
    pub description: String,
}

/// What a data card's `card.joblib` says of its data.
pub struct DataDetails {
    pub rows: Vec<MetadataRow>,
    pub features: Vec<DataFeature>,
    /// Named SQL queries the data came from.
    pub sql: Vec<(String, String)>,
}

/// A data card's details from its `card.joblib`; `None` when the client stored no card file.
pub fn data_details(site: &Site, card: &StoredCard) -> Result<Option<DataDetails>, String> {
    let path = format!("{}/card.joblib", card.folder());
    let Some(bytes) = read_if_stored(site, card, "card.joblib")? else {
        return Ok(None);
    };
    let fields = card_joblib_fields(&bytes, "a data card").map_err(|e| format!("{path}: {e}"))?;
    let joblib = pickled_json(&Pickled::Dict(fields));
    let (interface, metadata) = (&joblib["interface"], &joblib["metadata"]);
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut rows = Vec::new();
    for (key, value) in [
        ("interface", text(&metadata["interface_type"])),
        ("data type", text(&metadata["data_type"])),
        ("description", text(&metadata["description"]["summary"])),
        (
            "dependent variables",
            interface["dependent_vars"]
                .as_array()
                .map(|vars| vars.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        ),
    ] {
        if !value.is_empty() {
            rows.push(MetadataRow {
                key,
                value,
                href: None,
            });
        }
    }
    let descriptions = &interface["feature_descriptions"];
    let mut features: Vec<DataFeature> = interface["feature_map"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, feature)| DataFeature {
                    name: name.clone(),
                    feature_type: text(&feature["feature_type"]),
                    shape: match &feature["shape"] {
                        Value::Null => String::new(),
                        shape => shape.to_string(),
                    },
                    description: text(&descriptions[name.as_str()]),
                })
                .collect()
        })
        .unwrap_or_default();
    // Described features the map does not list still get their description shown.
    if let Some(described) = descriptions.as_object() {
        for (name, description) in described {
            if !features.iter().any(|f| &f.name == name) {
                features.push(DataFeature {
                    name: name.clone(),
                    feature_type: String::new(),
                    shape: String::new(),
                    description: text(description),
                });
            }
        }
    }
    let sql = interface["sql_logic"]
        .as_object()
        .map(|queries| queries.iter().map(|(n, q)| (n.clone(), text(q))).collect())
        .unwrap_or_default();
    Ok(Some(DataDetails {
        rows,
        features,
        sql,
    }))
}

fn pickled_text(value: &Pickled) -> String {
    match value {
        Pickled::String(s) => s.clone(),
        Pickled::I64(n) => n.to_string(),
        Pickled::F64(f) => f.to_string(),
        Pickled::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Pickled::None => "None".to_string(),
        other => format!("{other:?}"),
    }
}

/// A run's parameters from its `card.joblib`: each name with its values in the order they
/// were logged (empty when the client stored no card file).
pub fn run_parameters(
    site: &Site,
    card: &StoredCard,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let path = format!("{}/card.joblib", card.folder());
    let Some(bytes) = read_if_stored(site, card, "card.joblib")? else {
        return Ok(Vec::new());
    };
    let fields = card_joblib_fields(&bytes, "a run card").map_err(|e| format!("{path}: {e}"))?;
    let Some(Pickled::Dict(parameters)) = fields.get(&HashableValue::String("parameters".into()))
    else {
        return Ok(Vec::new());
    };
    let value_key = HashableValue::String("value".into());
    Ok(parameters
        .iter()
        .filter_map(|(name, logged)| {
            let HashableValue::String(name) = name else {
                return None;
            };
            let values = match logged {
                Pickled::List(items) => items
                    .iter()
                    .map(|item| match item {
                        Pickled::Dict(param) => {
                            param.get(&value_key).map(pickled_text).unwrap_or_default()
                        }
                        other => pickled_text(other),
                    })
                    .collect(),
                other => vec![pickled_text(other)],
            };
            Some((name.clone(), values))
        })
        .collect())
}

/// Parameters of several runs side by side: one row per name, one cell per run (its last
/// value, every value in the title when it was logged more than once).
pub struct ParameterTable {
    pub runs: Vec<String>,
    pub rows: Vec<ParameterRow>,
    pub problems: Vec<String>,
}

pub struct ParameterRow {
    pub name: String,
    pub cells: Vec<(String, String)>,
    pub differs: bool,
}

impl ParameterTable {
    /// `runs`: each run's label and card.
    pub fn of(site: &Site, runs: &[(String, &StoredCard)]) -> ParameterTable {
        let mut problems = Vec::new();
        let per_run: Vec<Vec<(String, Vec<String>)>> = runs
            .iter()
            .map(|(_, card)| {
                run_parameters(site, card).unwrap_or_else(|e| {
                    problems.push(e);
                    Vec::new()
                })
            })
            .collect();
        let mut names: Vec<&String> = per_run.iter().flatten().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        let rows = names
            .into_iter()
            .map(|name| {
                let cells: Vec<(String, String)> = per_run
                    .iter()
                    .map(|params| {
                        let values = params
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, v)| v.as_slice())
                            .unwrap_or_default();
                        let last = values.last().cloned().unwrap_or_default();
                        let all = if values.len() > 1 {
                            format!("logged {} times: {}", values.len(), values.join(", "))
                        } else {
                            String::new()
                        };
                        (last, all)
                    })
                    .collect();
                let differs = cells.windows(2).any(|w| w[0].0 != w[1].0);
                ParameterRow {
                    name: name.clone(),
                    cells,
                    differs,
                }
            })
            .collect();
        ParameterTable {
            runs: runs.iter().map(|(label, _)| label.clone()).collect(),
            rows,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{page, seeded, Fixture};
    use registry_core::access::Identity;
    use registry_store::blobs::{ChunkStore, DigestAlgorithm};
    use registry_store::files;
    use serde_pickle::SerOptions;

    fn store(fx: &Fixture, path: &str, bytes: &[u8]) {
        files::write_file::<registry_store::StoreError>(
            &fx.db,
            &ChunkStore(fx.kv.clone()),
            path,
            &format!("blob-{path}"),
            DigestAlgorithm::Blake3,
            None,
            || 1,
            files::Replacing::Anything,
            &files::nothing_more,
            |sink| sink.write(bytes),
        )
        .unwrap();
    }

    fn html(fx: &Fixture, path: &str) -> String {
        let (status, html) = page(fx.send(&Identity::Open, path, None, None));
        assert_eq!(status, 200, "{html}");
        html
    }

    #[test]
    fn a_model_page_shows_its_metadata_file() {
        let fx = seeded();
        let folder = "OPSML_MODEL_REGISTRY/team-a/churn/v1.2.0";
        assert!(!html(&fx, "/opsml/models/versions/?uid=m0").contains("id=\"model-metadata\""));
        let metadata = serde_json::json!({
            "model_name": "churn", "model_class": "LinearRegression", "model_type": "LinearRegression",
            "model_interface": "SklearnModel", "onnx_uri": null, "onnx_version": null,
            "model_uri": format!("opsml-root:/{folder}/trained-model.joblib"), "model_version": "1.2.0",
            "model_repository": "team-a", "sample_data_uri": format!("{folder}/sample-model-data.joblib"),
            "opsml_version": "2.2.4",
            "data_schema": {"data_type": "pandas.core.frame.DataFrame",
                            "input_features": {"f0": {"feature_type": "float64", "shape": [1]}},
                            "output_features": {"y": {"feature_type": "float64", "shape": [1]}}}
        });
        store(
            &fx,
            &format!("{folder}/model-metadata.json"),
            metadata.to_string().as_bytes(),
        );
        let page = html(&fx, "/opsml/models/versions/?uid=m0");
        assert!(
            page.contains("<th>interface</th><td>SklearnModel</td>"),
            "{page}"
        );
        assert!(page.contains("none: the model was registered without ONNX"));
        assert!(page.contains(&format!(
            "href=\"/opsml/files/download?path=opsml-root%3A/{folder}/sample-model-data.joblib\""
        )));
        assert!(page.contains(
            "<td>f0</td><td>input</td><td class=\"mono\">float64</td><td class=\"mono\">[1]</td>"
        ));
        store(&fx, &format!("{folder}/model-metadata.json"), b"{not json");
        assert!(html(&fx, "/opsml/models/versions/?uid=m0")
            .contains("is not the JSON the opsml client writes"));
    }

    #[test]
    fn a_data_card_shows_what_its_card_file_says_of_the_data() {
        let fx = seeded();
        let key = |k: &str| HashableValue::String(k.into());
        let text = |t: &str| Pickled::String(t.into());
        let dict = |pairs: Vec<(&str, Pickled)>| {
            Pickled::Dict(pairs.into_iter().map(|(k, v)| (key(k), v)).collect())
        };
        let card = dict(vec![
            (
                "interface",
                dict(vec![
                    ("dependent_vars", Pickled::List(vec![text("y")])),
                    (
                        "feature_map",
                        dict(vec![(
                            "f0",
                            dict(vec![
                                ("feature_type", text("float64")),
                                ("shape", Pickled::Tuple(vec![Pickled::I64(30)])),
                            ]),
                        )]),
                    ),
                    (
                        "feature_descriptions",
                        dict(vec![
                            ("f0", text("tenure <months>")),
                            ("y", text("churned")),
                        ]),
                    ),
                    (
                        "sql_logic",
                        dict(vec![("train", text("SELECT * FROM churn"))]),
                    ),
                ]),
            ),
            (
                "metadata",
                dict(vec![
                    ("interface_type", text("PandasData")),
                    ("data_type", text("pandas.core.frame.DataFrame")),
                    ("description", dict(vec![("summary", Pickled::None)])),
                ]),
            ),
        ]);
        store(
            &fx,
            "OPSML_DATA_REGISTRY/team-a/churn-data/v1.0.0/card.joblib",
            &serde_pickle::value_to_vec(&card, SerOptions::new()).unwrap(),
        );
        let page = html(&fx, "/opsml/data/versions/?uid=d0");
        assert!(
            page.contains("<th>interface</th><td>PandasData</td>"),
            "{page}"
        );
        assert!(page.contains("<th>dependent variables</th><td>y</td>"));
        assert!(!page.contains("<th>description</th>"));
        assert!(page.contains("<td>f0</td><td class=\"mono\">float64</td><td class=\"mono\">[30]</td><td>tenure &#60;months&#62;</td>"), "{page}");
        assert!(page.contains(
            "<td>y</td><td class=\"mono\"></td><td class=\"mono\"></td><td>churned</td>"
        ));
        assert!(page.contains("SELECT * FROM churn"));
    }

    #[test]
    fn a_data_card_links_its_profile_report() {
        let fx = seeded();
        assert!(!html(&fx, "/opsml/data/versions/?uid=d0").contains("id=\"data-profile\""));
        store(
            &fx,
            "OPSML_DATA_REGISTRY/team-a/churn-data/v1.0.0/data-profile.html",
            b"<html>",
        );
        assert!(html(&fx, "/opsml/data/versions/?uid=d0").contains(
            "id=\"data-profile\" href=\"/opsml/files/download?path=opsml-root%3A/OPSML_DATA_REGISTRY/team-a/churn-data/v1.0.0/data-profile.html\""
        ));
    }

    #[test]
    fn run_pages_show_parameters_side_by_side() {
        let fx = seeded();
        let key = |k: &str| HashableValue::String(k.into());
        let param = |v: Pickled| {
            Pickled::Dict(
                [
                    (key("name"), Pickled::String("x".into())),
                    (key("value"), v),
                ]
                .into(),
            )
        };
        let card = Pickled::Dict(
            [(
                key("parameters"),
                Pickled::Dict(
                    [
                        (
                            key("learning_rate"),
                            Pickled::List(vec![param(Pickled::F64(0.1))]),
                        ),
                        (
                            key("epochs"),
                            Pickled::List(vec![param(Pickled::I64(5)), param(Pickled::I64(8))]),
                        ),
                    ]
                    .into(),
                ),
            )]
            .into(),
        );
        let folder = "OPSML_RUN_REGISTRY/team-a/<script>alert(1)</script>/v1.0.0";
        store(
            &fx,
            &format!("{folder}/card.joblib"),
            &serde_pickle::value_to_vec(&card, SerOptions::new()).unwrap(),
        );
        let page = html(&fx, "/opsml/runs/versions/?uid=r0");
        assert!(
            page.contains("<th>learning_rate</th><td>0.1</td>"),
            "{page}"
        );
        assert!(page.contains("<th>epochs</th><td title=\"logged 2 times: 5, 8\">8</td>"));
        let page = html(&fx, "/opsml/projects/runs/plot/?run_uid=r0");
        assert!(page.contains("<th>epochs</th><td title=\"logged 2 times: 5, 8\">8</td>"));
        store(&fx, &format!("{folder}/card.joblib"), b"not a pickle");
        assert!(html(&fx, "/opsml/runs/versions/?uid=r0")
            .contains("card.joblib is not a Python pickle"));
    }
}
