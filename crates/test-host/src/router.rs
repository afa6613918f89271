//! HTTP route matching the way Spin's HTTP trigger does it.
//!
//! A route is either exact (`/api/tasks`) or a wildcard (`/api/...`, which
//! matches `/api` and everything below it). Segments written `:name` match any
//! single segment. When several routes match, the most specific wins: exact
//! routes before wildcards, then more literal segments, then fewer parameters.

/// One parsed route.
#[derive(Debug, Clone)]
struct Route {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
    component: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

/// The outcome of routing a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the component that handles the request.
    pub component: usize,
    /// The route as written in the manifest (`/api/...`).
    pub raw_route: String,
    /// The route without its trailing `/...` (`/api`).
    pub component_route: String,
    /// The part of the path below the matched route (`/v1/tasks`), empty for
    /// exact routes.
    pub path_info: String,
}

/// The routing table of an application.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

fn split_segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

impl Router {
    /// Builds a router from `(route, component index)` pairs.
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        let mut parsed: Vec<Route> = routes
            .into_iter()
            .map(|(raw, component)| {
                let (base, wildcard) = match raw.strip_suffix("/...") {
                    Some(base) => (base, true),
                    None if raw == "..." => ("", true),
                    None => (raw, false),
                };
                let segments = split_segments(base)
                    .into_iter()
                    .map(|s| {
                        if s.starts_with(':') {
                            Segment::Param
                        } else {
                            Segment::Literal(s.to_string())
                        }
                    })
                    .collect();
                Route {
                    raw: raw.to_string(),
                    segments,
                    wildcard,
                    component,
                }
            })
            .collect();
        // Most specific first; the sort is stable so manifest order breaks ties.
        parsed.sort_by_key(|r| {
            let params = r.segments.iter().filter(|s| **s == Segment::Param).count();
            let literals = r.segments.len() - params;
            (r.wildcard, usize::MAX - literals, params)
        });
        Router { routes: parsed }
    }

    /// Finds the route for a request path.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.routes.iter().find_map(|r| Self::try_match(r, path))
    }

    /// Finds the route for `path` among the routes of one component, falling
    /// back to treating the whole path as the path info (service chaining to
    /// a component with a private route).
    pub fn route_for_component(&self, component: usize, path: &str) -> RouteMatch {
        self.routes
            .iter()
            .filter(|r| r.component == component)
            .find_map(|r| Self::try_match(r, path))
            .unwrap_or_else(|| RouteMatch {
                component,
                raw_route: "/...".to_string(),
                component_route: String::new(),
                path_info: path.to_string(),
            })
    }

    fn try_match(route: &Route, path: &str) -> Option<RouteMatch> {
        let parts = split_segments(path);
        if parts.len() < route.segments.len()
            || (!route.wildcard && parts.len() != route.segments.len())
        {
            return None;
        }
        for (seg, part) in route.segments.iter().zip(&parts) {
            if let Segment::Literal(lit) = seg {
                if lit != part {
                    return None;
                }
            }
        }
        let path_info = if route.wildcard {
            // Keep the rest of the path as written, including a trailing slash.
            let mut consumed = 0;
            let mut idx = 0;
            let bytes = path.as_bytes();
            while consumed < route.segments.len() && idx < bytes.len() {
                while idx < bytes.len() && bytes[idx] == b'/' {
                    idx += 1;
                }
                while idx < bytes.len() && bytes[idx] != b'/' {
                    idx += 1;
                }
                consumed += 1;
            }
            path[idx..].to_string()
        } else {
            String::new()
        };
        let component_route = route
            .raw
            .strip_suffix("/...")
            .or_else(|| route.raw.strip_suffix("..."))
            .unwrap_or(&route.raw)
            .to_string();
        Some(RouteMatch {
            component: route.component,
            raw_route: route.raw.clone(),
            component_route,
            path_info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new([
            ("/...", 0),
            ("/probe/...", 1),
            ("/probe/exact", 2),
            ("/probe/deep/...", 3),
            ("/users/:id", 4),
        ])
    }

    #[test]
    fn most_specific_wins() {
        let r = router();
        assert_eq!(r.route("/probe/exact").unwrap().component, 2);
        assert_eq!(r.route("/probe/exact/more").unwrap().component, 1);
        assert_eq!(r.route("/probe/deep/x").unwrap().component, 3);
        assert_eq!(r.route("/probe").unwrap().component, 1);
        assert_eq!(r.route("/other").unwrap().component, 0);
        assert_eq!(r.route("/").unwrap().component, 0);
        assert_eq!(r.route("/users/7").unwrap().component, 4);
        assert_eq!(r.route("/users/7/x").unwrap().component, 0);
    }

    #[test]
    fn path_info() {
        let r = router();
        let m = r.route("/probe/kv/get").unwrap();
        assert_eq!(m.path_info, "/kv/get");
        assert_eq!(m.component_route, "/probe");
        assert_eq!(m.raw_route, "/probe/...");
        assert_eq!(r.route("/probe").unwrap().path_info, "");
        assert_eq!(r.route("/probe/").unwrap().path_info, "/");
        assert_eq!(r.route("/probe/exact").unwrap().path_info, "");
        assert_eq!(r.route("/x/y").unwrap().path_info, "/x/y");
    }

    #[test]
    fn no_route() {
        let r = Router::new([("/only", 0)]);
        assert!(r.route("/other").is_none());
        assert!(r.route("/only/x").is_none());
        assert!(r.route("/only").is_some());
    }
}
