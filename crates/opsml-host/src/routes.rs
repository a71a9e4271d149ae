//! Spin's HTTP route patterns: exact paths, `:name` segments and a trailing `/...` wildcard.
//! The most specific pattern wins: more literal segments first, then a fixed-length pattern
//! over a wildcard, then fewer parameters.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone)]
pub struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// What a request path matched: the values of `:name` segments and, for a wildcard route,
/// the rest of the path (Spin's `spin-path-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub params: Vec<(String, String)>,
    pub path_info: String,
    /// The route as written in the manifest, without a trailing `/...`.
    pub base_route: String,
}

impl RoutePattern {
    pub fn parse(route: &str) -> Result<Self> {
        if !route.starts_with('/') {
            bail!("route {route:?} must start with '/'");
        }
        let mut parts: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
        let wildcard = parts.last() == Some(&"...");
        if wildcard {
            parts.pop();
        }
        let mut segments = Vec::with_capacity(parts.len());
        for part in parts {
            if part == "..." {
                bail!("route {route:?}: '...' is only allowed as the last segment");
            }
            segments.push(match part.strip_prefix(':') {
                Some("") => bail!("route {route:?}: a ':' segment needs a name"),
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(part.to_string()),
            });
        }
        Ok(Self {
            raw: route.to_string(),
            segments,
            wildcard,
        })
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    fn specificity(&self) -> (usize, bool, std::cmp::Reverse<usize>) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let params = self.segments.len() - literals;
        (literals, !self.wildcard, std::cmp::Reverse(params))
    }

    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), part.to_string())),
            }
        }
        let rest = &parts[self.segments.len()..];
        let path_info = if rest.is_empty() {
            String::new()
        } else {
            format!("/{}", rest.join("/"))
        };
        let base_route = self.raw.strip_suffix("/...").unwrap_or(&self.raw);
        Some(RouteMatch {
            params,
            path_info,
            base_route: if base_route.is_empty() {
                "/".into()
            } else {
                base_route.into()
            },
        })
    }
}

/// Routes to component ids, tried most specific first.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<(RoutePattern, String)>,
}

impl Router {
    pub fn new(routes: impl IntoIterator<Item = (RoutePattern, String)>) -> Result<Self> {
        let mut routes: Vec<_> = routes.into_iter().collect();
        for (i, (a, _)) in routes.iter().enumerate() {
            for (b, _) in &routes[i + 1..] {
                if a.segments == b.segments && a.wildcard == b.wildcard {
                    bail!("routes {:?} and {:?} are the same route", a.raw, b.raw);
                }
            }
        }
        routes.sort_by_key(|(pattern, _)| std::cmp::Reverse(pattern.specificity()));
        Ok(Self { routes })
    }

    /// (route, component id) pairs, most specific first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes.iter().map(|(p, c)| (p.raw(), c.as_str()))
    }

    pub fn route(&self, path: &str) -> Option<(&RoutePattern, &str, RouteMatch)> {
        self.routes
            .iter()
            .find_map(|(pattern, id)| pattern.matches(path).map(|m| (pattern, id.as_str(), m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::new(
            routes
                .iter()
                .map(|(r, c)| (RoutePattern::parse(r).unwrap(), c.to_string())),
        )
        .unwrap()
    }

    #[test]
    fn most_specific_route_wins() {
        let r = router(&[
            ("/...", "fallback"),
            ("/opsml/files/...", "files"),
            ("/opsml/files/upload", "upload"),
            ("/opsml/:area/list", "list"),
        ]);
        let cases = [
            ("/opsml/files/upload", "upload"),
            ("/opsml/files/download", "files"),
            ("/opsml/cards/list", "list"),
            // Equal literal segments: a fixed-length pattern beats a wildcard.
            ("/opsml/files/list", "list"),
            ("/anything/else", "fallback"),
            ("/", "fallback"),
        ];
        for (path, want) in cases {
            assert_eq!(r.route(path).unwrap().1, want, "{path}");
        }
    }

    #[test]
    fn exact_route_does_not_match_longer_paths() {
        let r = router(&[("/opsml/healthcheck", "h")]);
        assert!(r.route("/opsml/healthcheck").is_some());
        assert!(r.route("/opsml/healthcheck/").is_some());
        assert!(r.route("/opsml/healthcheck/x").is_none());
        assert!(r.route("/opsml").is_none());
    }

    #[test]
    fn wildcard_gives_path_info_and_params() {
        let r = router(&[("/items/:id/...", "c")]);
        let (_, _, m) = r.route("/items/42/a/b").unwrap();
        assert_eq!(m.params, vec![("id".to_string(), "42".to_string())]);
        assert_eq!(m.path_info, "/a/b");
        assert_eq!(m.base_route, "/items/:id");
    }

    #[test]
    fn duplicate_and_malformed_routes_are_refused() {
        assert!(Router::new([
            (RoutePattern::parse("/a").unwrap(), "x".into()),
            (RoutePattern::parse("/a/").unwrap(), "y".into()),
        ])
        .is_err());
        assert!(RoutePattern::parse("a").is_err());
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a/:").is_err());
    }
}
