//! An audit card's content as the opsml client stores it: `card.joblib`, a plain Python pickle
//! of `AuditCard.model_dump()` (joblib writes no header and opsml never compresses it). Only
//! that file holds the questions, answers and comments; the registry row holds the card's
//! fields and `approved`.
//!
//! The document keeps every key it was given (a newer client's extra fields survive a save) and
//! writes pickle protocol 3, which `joblib.load` and `AuditCard(**d)` accept. Question numbers
//! stay Python ints, and the enum the client stores in `metadata.*cards[].card_type` is read
//! back as its value (the client's pydantic model turns the text into its enum again).

use serde_pickle::{DeOptions, HashableValue, SerOptions, Value};
use std::collections::BTreeMap;

/// The sections of an audit, in the order a person answers them, with their headings.
pub const SECTIONS: [(&str, &str); 7] = [
    ("business_understanding", "Business understanding"),
    ("data_understanding", "Data understanding"),
    ("data_preparation", "Data preparation"),
    ("modeling", "Modeling"),
    ("evaluation", "Evaluation"),
    ("deployment_ops", "Deployment and operations"),
    ("misc", "Other"),
];

/// The questions of a card created in the browser: (section, [(question, why it is asked)]).
/// Cards created by the opsml client carry the client's own questions, which are kept as they
/// are.
const NEW_CARD_QUESTIONS: [(&str, &[(&str, &str)]); 7] = [
    (
        "business_understanding",
        &[
            ("What decision or process will the model's output feed?", "An audit starts from what the model changes for people and for the business."),
            ("How is success measured, and what value of that measure is good enough?", "Without an agreed target nobody can say whether the model is ready."),
            ("Who owns the model, and who answers for its mistakes?", "Every model in production needs a named owner."),
            ("What happens if the model is wrong or unavailable?", "The cost of an error decides how careful the rest of the audit must be."),
        ],
    ),
    (
        "data_understanding",
        &[
            ("Which data sources does the model learn from, and who owns them?", "Provenance is the first thing a reviewer checks."),
            ("Does the data contain personal or sensitive information, and on what basis is it used?", "Privacy law and internal policy apply before anything is trained."),
            ("Over which period was the data collected, and does it still describe today's population?", "Old or unrepresentative data makes a model wrong in ways tests do not show."),
            ("What is known about missing values, errors and biases in the data?", "Known weaknesses should be written down rather than rediscovered."),
        ],
    ),
    (
        "data_preparation",
        &[
            ("How were the training, validation and test sets split?", "A leaking split makes every later figure meaningless."),
            ("Which features are derived, and how?", "Features computed differently at serving time are a common cause of failure."),
            ("Were any records removed or rebalanced, and why?", "Filtering changes who the model works for."),
            ("Can the prepared data be rebuilt from its sources?", "Reproducibility lets someone else check the work."),
        ],
    ),
    (
        "modeling",
        &[
            ("Which kind of model was chosen, and which simpler ones were compared?", "A complex model should beat a simple baseline to earn its cost."),
            ("How were the hyperparameters chosen?", "Tuning on the test set inflates results."),
            ("Which library versions and random seeds produced this model?", "They are needed to rebuild the same model."),
            ("Which inputs drive the predictions most?", "Explanations reveal features that should not matter."),
            ("Are protected attributes, or close proxies of them, among the inputs?", "Proxies carry discrimination even when the attribute itself is removed."),
        ],
    ),
    (
        "evaluation",
        &[
            ("What are the results on the held-out test set, against the target set above?", "The decision to deploy rests on these numbers."),
            ("How does the model perform for each important group of people or cases?", "An average can hide a group the model fails."),
            ("How does it compare with the model or process it replaces?", "A new model must be better than what exists."),
            ("What are its known failure cases?", "Users and operators should know where not to trust it."),
        ],
    ),
    (
        "deployment_ops",
        &[
            ("How is the model served, and what are its latency and throughput needs?", "Serving constraints decide the infrastructure."),
            ("What is monitored in production (inputs, outputs, drift, errors), and who is alerted?", "A model degrades silently unless someone watches it."),
            ("How is the model rolled back, and how quickly?", "A bad release must be reversible."),
            ("When and how is the model retrained?", "Models age as the world they describe changes."),
            ("Who may call the model, and how is access controlled?", "Predictions can leak the data they were trained on."),
        ],
    ),
    (
        "misc",
        &[
            ("Which regulations or internal policies apply to this model?", "Some domains need formal sign-off."),
            ("Is there anything else a reviewer should know?", "Room for what the other questions missed."),
        ],
    ),
];

/// Why a stored `card.joblib` cannot be used as an audit card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError(pub String);

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One question of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub number: i64,
    pub question: String,
    pub purpose: String,
    pub response: Option<String>,
}

/// A section with its questions in number order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub key: String,
    pub title: String,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub name: String,
    pub comment: String,
    pub timestamp: String,
}

/// An audit card's `model_dump()`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDocument {
    root: BTreeMap<HashableValue, Value>,
}

fn key(name: &str) -> HashableValue {
    HashableValue::String(name.to_string())
}

fn text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn question_number(key: &HashableValue) -> Option<i64> {
    match key {
        HashableValue::I64(n) => Some(*n),
        // A card that went through JSON has text keys; the client accepts those too.
        HashableValue::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The enum the client pickles as `CardType('model')` comes back as `("model",)`.
fn unwrap_enums(value: Value) -> Value {
    match value {
        Value::Tuple(items) if items.len() == 1 && matches!(items[0], Value::String(_)) => {
            items.into_iter().next().unwrap_or(Value::None)
        }
        Value::List(items) => Value::List(items.into_iter().map(unwrap_enums).collect()),
        Value::Dict(map) => {
            Value::Dict(map.into_iter().map(|(k, v)| (k, unwrap_enums(v))).collect())
        }
        other => other,
    }
}

/// The fields of a card the opsml client stored as `card.joblib` (`what`: the kind of card,
/// for the error).
pub(crate) fn card_joblib_fields(
    bytes: &[u8],
    what: &str,
) -> Result<BTreeMap<HashableValue, Value>, DocumentError> {
    match bytes {
        [0x80, ..] => {}
        [0x78, ..] | [0x1f, 0x8b, ..] => {
            return Err(DocumentError(
                "card.joblib is compressed; only the uncompressed files the opsml client writes are read here".into(),
            ))
        }
        _ => {
            return Err(DocumentError(
                "card.joblib is not a Python pickle, so it was not written by the opsml client".into(),
            ))
        }
    }
    let value = serde_pickle::value_from_slice(bytes, DeOptions::new().keep_restore_state())
        .map_err(|e| DocumentError(format!("card.joblib cannot be read: {e}")))?;
    match unwrap_enums(value) {
        Value::Dict(root) => Ok(root),
        _ => Err(DocumentError(format!(
            "card.joblib does not hold {what} (a dict of its fields)"
        ))),
    }
}

impl AuditDocument {
    /// Reads a `card.joblib` written by the opsml client or by [`AuditDocument::to_pickle`].
    pub fn from_pickle(bytes: &[u8]) -> Result<Self, DocumentError> {
        let root = card_joblib_fields(bytes, "an audit card")?;
        match root.get(&key("audit")) {
            Some(Value::Dict(_)) => Ok(Self { root }),
            _ => Err(DocumentError(
                "card.joblib has no audit sections: it is not an audit card".into(),
            )),
        }
    }

    /// The card as pickle protocol 3.
    pub fn to_pickle(&self) -> Vec<u8> {
        serde_pickle::value_to_vec(&Value::Dict(self.root.clone()), SerOptions::new())
            .expect("a tree of plain values always pickles")
    }

    /// A new card with this registry's own questions, all unanswered.
    pub fn new(name: &str, repository: &str, contact: &str, version: &str, uid: &str) -> Self {
        let sections = NEW_CARD_QUESTIONS
            .iter()
            .map(|(section, questions)| {
                let numbered = questions
                    .iter()
                    .zip(1..)
                    .map(|((question, purpose), n)| {
                        let entry = [
                            ("question", Value::String(question.to_string())),
                            ("purpose", Value::String(purpose.to_string())),
                            ("response", Value::None),
                        ]
                        .into_iter()
                        .map(|(k, v)| (key(k), v))
                        .collect();
                        (HashableValue::I64(n), Value::Dict(entry))
                    })
                    .collect();
                (key(section), Value::Dict(numbered))
            })
            .collect();
        let metadata = ["datacards", "modelcards", "runcards"]
            .into_iter()
            .map(|k| (key(k), Value::List(Vec::new())))
            .collect();
        let root = [
            ("name", Value::String(name.into())),
            ("repository", Value::String(repository.into())),
            ("contact", Value::String(contact.into())),
            ("version", Value::String(version.into())),
            ("uid", Value::String(uid.into())),
            ("info", Value::None),
            ("tags", Value::Dict(BTreeMap::new())),
            ("audit", Value::Dict(sections)),
            ("approved", Value::Bool(false)),
            ("comments", Value::List(Vec::new())),
            ("metadata", Value::Dict(metadata)),
        ]
        .into_iter()
        .map(|(k, v)| (key(k), v))
        .collect();
        Self { root }
    }

    /// A top-level text field (`name`, `contact`, ...), empty when absent.
    pub fn field(&self, name: &str) -> String {
        text(self.root.get(&key(name))).unwrap_or_default()
    }

    pub fn set_field(&mut self, name: &str, value: &str) {
        self.root.insert(key(name), Value::String(value.into()));
    }

    fn sections_map(&self) -> Option<&BTreeMap<HashableValue, Value>> {
        match self.root.get(&key("audit")) {
            Some(Value::Dict(map)) => Some(map),
            _ => None,
        }
    }

    /// The sections: the known ones in answering order, then any others by name.
    pub fn sections(&self) -> Vec<Section> {
        let Some(map) = self.sections_map() else {
            return Vec::new();
        };
        let title_of = |name: &str| {
            SECTIONS
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, t)| t.to_string())
                .unwrap_or_else(|| name.replace('_', " "))
        };
        let rank = |name: &str| SECTIONS.iter().position(|(k, _)| *k == name);
        let mut sections: Vec<Section> = map
            .iter()
            .filter_map(|(k, v)| {
                let (HashableValue::String(name), Value::Dict(questions)) = (k, v) else {
                    return None;
                };
                let mut questions: Vec<Question> = questions
                    .iter()
                    .filter_map(|(n, entry)| {
                        let Value::Dict(entry) = entry else {
                            return None;
                        };
                        Some(Question {
                            number: question_number(n)?,
                            question: text(entry.get(&key("question"))).unwrap_or_default(),
                            purpose: text(entry.get(&key("purpose"))).unwrap_or_default(),
                            response: text(entry.get(&key("response"))),
                        })
                    })
                    .collect();
                questions.sort_by_key(|q| q.number);
                Some(Section {
                    key: name.clone(),
                    title: title_of(name),
                    questions,
                })
            })
            .collect();
        sections.sort_by(|a, b| {
            (rank(&a.key).is_none(), rank(&a.key), &a.key).cmp(&(
                rank(&b.key).is_none(),
                rank(&b.key),
                &b.key,
            ))
        });
        sections
    }

    /// Sets (or with `None` clears) an answer; false when the card has no such question.
    pub fn set_response(&mut self, section: &str, number: i64, response: Option<String>) -> bool {
        let Some(Value::Dict(sections)) = self.root.get_mut(&key("audit")) else {
            return false;
        };
        let Some(Value::Dict(questions)) = sections.get_mut(&key(section)) else {
            return false;
        };
        let entry = questions
            .iter_mut()
            .find(|(n, _)| question_number(n) == Some(number))
            .map(|(_, entry)| entry);
        let Some(Value::Dict(entry)) = entry else {
            return false;
        };
        entry.insert(
            key("response"),
            response.map(Value::String).unwrap_or(Value::None),
        );
        true
    }

    pub fn approved(&self) -> bool {
        matches!(self.root.get(&key("approved")), Some(Value::Bool(true)))
    }

    pub fn set_approved(&mut self, approved: bool) {
        self.root.insert(key("approved"), Value::Bool(approved));
    }

    /// The comments, newest first (as the client keeps them).
    pub fn comments(&self) -> Vec<Comment> {
        let Some(Value::List(items)) = self.root.get(&key("comments")) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                let Value::Dict(c) = item else { return None };
                Some(Comment {
                    name: text(c.get(&key("name"))).unwrap_or_default(),
                    comment: text(c.get(&key("comment"))).unwrap_or_default(),
                    timestamp: text(c.get(&key("timestamp"))).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Adds a comment in front; `timestamp` is `YYYY-MM-DD HH:MM`, the client's format.
    pub fn add_comment(&mut self, name: &str, comment: &str, timestamp: &str) {
        let entry = [
            ("name", name),
            ("comment", comment),
            ("timestamp", timestamp),
        ]
        .into_iter()
        .map(|(k, v)| (key(k), Value::String(v.into())))
        .collect();
        match self.root.get_mut(&key("comments")) {
            Some(Value::List(items)) => items.insert(0, Value::Dict(entry)),
            _ => {
                self.root
                    .insert(key("comments"), Value::List(vec![Value::Dict(entry)]));
            }
        }
    }

    /// Records that the audit covers a model version (`metadata.modelcards`).
    pub fn add_model(&mut self, name: &str, version: &str) {
        let entry = Value::Dict(
            [("name", name), ("version", version), ("card_type", "model")]
                .into_iter()
                .map(|(k, v)| (key(k), Value::String(v.into())))
                .collect(),
        );
        let metadata = self
            .root
            .entry(key("metadata"))
            .or_insert_with(|| Value::Dict(BTreeMap::new()));
        if let Value::Dict(metadata) = metadata {
            match metadata
                .entry(key("modelcards"))
                .or_insert_with(|| Value::List(Vec::new()))
            {
                Value::List(items) => items.push(entry),
                other => *other = Value::List(vec![entry]),
            }
        }
    }

    /// The model versions the audit covers (`metadata.modelcards`): (name, version).
    pub fn models(&self) -> Vec<(String, String)> {
        let Some(Value::Dict(metadata)) = self.root.get(&key("metadata")) else {
            return Vec::new();
        };
        let Some(Value::List(cards)) = metadata.get(&key("modelcards")) else {
            return Vec::new();
        };
        cards
            .iter()
            .filter_map(|card| {
                let Value::Dict(card) = card else { return None };
                Some((
                    text(card.get(&key("name")))?,
                    text(card.get(&key("version")))?,
                ))
            })
            .collect()
    }

    /// The answers as CSV: `topic,number,question,purpose,response`, one row per question,
    /// CRLF line ends (what the reference's download gives).
    pub fn to_csv(&self) -> Vec<u8> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let mut write = |row: [&str; 5]| writer.write_record(row);
        let header = write(["topic", "number", "question", "purpose", "response"]);
        let rows = self.sections().into_iter().try_for_each(|section| {
            section.questions.iter().try_for_each(|q| {
                write([
                    &section.key,
                    &q.number.to_string(),
                    &q.question,
                    &q.purpose,
                    q.response.as_deref().unwrap_or(""),
                ])
            })
        });
        header
            .and(rows)
            .expect("writing CSV into memory cannot fail");
        writer
            .into_inner()
            .expect("writing CSV into memory cannot fail")
    }

    /// Takes the answers of a CSV in [`AuditDocument::to_csv`]'s form (only `topic`, `number`
    /// and `response` are read; an empty response clears the answer). Every row is checked
    /// before any answer changes; returns how many answers were read.
    pub fn apply_csv(&mut self, bytes: &[u8]) -> Result<usize, DocumentError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| DocumentError(format!("the CSV cannot be read: {e}")))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
                .ok_or_else(|| {
                    DocumentError(format!(
                        "the CSV has no \"{name}\" column; its first line must name the columns topic,number,question,purpose,response"
                    ))
                })
        };
        let (topic, number, response) = (column("topic")?, column("number")?, column("response")?);
        let known = self.sections();
        let mut answers = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let record = record
                .map_err(|e| DocumentError(format!("CSV line {line} cannot be read: {e}")))?;
            let cell = |i: usize| record.get(i).unwrap_or("").trim();
            let section = cell(topic);
            let n: i64 = cell(number).parse().map_err(|_| {
                DocumentError(format!(
                    "CSV line {line}: number {:?} is not a question number",
                    cell(number)
                ))
            })?;
            let exists = known
                .iter()
                .any(|s| s.key == section && s.questions.iter().any(|q| q.number == n));
            if !exists {
                return Err(DocumentError(format!(
                    "CSV line {line}: this card has no question {n} in section {section:?}"
                )));
            }
            let text = record.get(response).unwrap_or("").to_string();
            answers.push((
                section.to_string(),
                n,
                (!text.trim().is_empty()).then_some(text),
            ));
        }
        let count = answers.len();
        for (section, n, text) in answers {
            self.set_response(&section, n, text);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> AuditDocument {
        AuditDocument::new("churn-audit", "team-a", "me@example.com", "1.0.0", "u1")
    }

    #[test]
    fn a_new_card_has_every_section_in_order_and_no_answers() {
        let sections = card().sections();
        let keys: Vec<&str> = sections.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, SECTIONS.map(|(k, _)| k));
        assert!(sections.iter().all(|s| !s.questions.is_empty()));
        assert!(sections
            .iter()
            .flat_map(|s| &s.questions)
            .all(|q| q.response.is_none() && !q.question.is_empty()));
        assert_eq!(sections[0].questions[0].number, 1);
    }

    #[test]
    fn answers_comments_and_approval_survive_a_pickle_round_trip() {
        let mut doc = card();
        assert!(doc.set_response("modeling", 2, Some("grid search on <validation>".into())));
        assert!(!doc.set_response("modeling", 99, Some("x".into())));
        assert!(!doc.set_response("nowhere", 1, Some("x".into())));
        doc.set_approved(true);
        doc.add_comment("ann", "first", "2026-11-30 10:00");
        doc.add_comment("bob", "second", "2026-11-30 11:00");
        doc.add_model("churn", "1.1.0");
        let bytes = doc.to_pickle();
        assert_eq!(&bytes[..2], &[0x80, 0x03]);
        let back = AuditDocument::from_pickle(&bytes).unwrap();
        assert_eq!(back, doc);
        assert!(back.approved());
        let modeling = &back.sections()[3];
        assert_eq!(
            modeling.questions[1].response.as_deref(),
            Some("grid search on <validation>")
        );
        assert_eq!(back.models(), [("churn".to_string(), "1.1.0".to_string())]);
        let names: Vec<String> = back.comments().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["bob", "ann"]);
    }

    #[test]
    fn what_is_not_an_uncompressed_audit_pickle_is_refused_with_the_reason() {
        let err = |bytes: &[u8]| AuditDocument::from_pickle(bytes).unwrap_err().0;
        assert!(err(b"\x78\x9c...").contains("compressed"));
        assert!(err(b"{\"audit\": {}}").contains("not a Python pickle"));
        let list = serde_pickle::value_to_vec(&Value::List(vec![]), SerOptions::new()).unwrap();
        assert!(err(&list).contains("does not hold an audit card"));
        let other = serde_pickle::value_to_vec(
            &Value::Dict([(key("name"), Value::String("x".into()))].into()),
            SerOptions::new(),
        )
        .unwrap();
        assert!(err(&other).contains("no audit sections"));
        assert!(err(&[0x80, 0x04, 0x95]).contains("cannot be read"));
    }

    #[test]
    fn an_enum_the_client_pickled_reads_as_its_value() {
        let mut doc = card();
        let metadata = doc.root.get_mut(&key("metadata")).unwrap();
        let Value::Dict(metadata) = metadata else {
            panic!()
        };
        metadata.insert(
            key("modelcards"),
            Value::List(vec![Value::Dict(
                [(
                    key("card_type"),
                    Value::Tuple(vec![Value::String("model".into())]),
                )]
                .into(),
            )]),
        );
        let back = AuditDocument::from_pickle(&doc.to_pickle()).unwrap();
        let Some(Value::Dict(metadata)) = back.root.get(&key("metadata")) else {
            panic!()
        };
        let Some(Value::List(cards)) = metadata.get(&key("modelcards")) else {
            panic!()
        };
        let Value::Dict(first) = &cards[0] else {
            panic!()
        };
        assert_eq!(first[&key("card_type")], Value::String("model".into()));
    }

    #[test]
    fn csv_goes_out_and_comes_back_in() {
        let mut doc = card();
        doc.set_response(
            "business_understanding",
            1,
            Some("pricing, \"quoted\"\nand a new line".into()),
        );
        let csv = doc.to_csv();
        let text = String::from_utf8(csv.clone()).unwrap();
        assert!(text.starts_with("topic,number,question,purpose,response\r\n"));
        let questions: usize = doc.sections().iter().map(|s| s.questions.len()).sum();
        let mut fresh = card();
        assert_eq!(fresh.apply_csv(&csv).unwrap(), questions);
        assert_eq!(fresh, doc);

        // Only topic, number and response are read, in any column order; blank clears.
        let mut edited = doc.clone();
        let n = edited
            .apply_csv(
                b"response,topic,number\r\nyes,evaluation,1\r\n,business_understanding,1\r\n",
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            edited.sections()[4].questions[0].response.as_deref(),
            Some("yes")
        );
        assert_eq!(edited.sections()[0].questions[0].response, None);
    }

    #[test]
    fn a_bad_csv_changes_nothing_and_says_which_line() {
        let mut doc = card();
        let before = doc.clone();
        let err = doc
            .apply_csv(b"topic,number,response\nevaluation,1,fine\nevaluation,77,lost\n")
            .unwrap_err();
        assert_eq!(
            err.0,
            "CSV line 3: this card has no question 77 in section \"evaluation\""
        );
        assert_eq!(doc, before);
        let err = doc
            .apply_csv(b"topic,response\nevaluation,x\n")
            .unwrap_err();
        assert!(err.0.contains("no \"number\" column"), "{err}");
        let err = doc
            .apply_csv(b"topic,number,response\nevaluation,one,x\n")
            .unwrap_err();
        assert!(err.0.contains("line 2: number \"one\""), "{err}");
    }
}
