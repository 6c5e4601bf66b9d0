//! Routes: the stations a product of a category passes through, with a target time for each.

use contracts::ProductCategory;

use super::{StationCode, StationName, ValidationError};

/// A product category taken from a URL or a body; the wrapper exists only to give the
/// contract's enum the `FromStr` that path parameters need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Category(pub ProductCategory);

impl std::str::FromStr for Category {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProductCategory::parse(s).map(Category).ok_or_else(|| {
            ValidationError::new(
                "category",
                "must be one of pizza, side, drink, sauce, dessert",
            )
        })
    }
}

/// One stop on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub station: StationCode,
    pub target_seconds: u32,
}

/// A non-empty list of stages that visits each station at most once. Visiting a station once is
/// what lets a tap be recognised as a repeat: a product is at most once at a station per pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route(Vec<Stage>);

/// An hour is far beyond any real stage; a bigger target is a typo (ms for s).
const MAX_TARGET_SECONDS: u32 = 3600;

impl Route {
    /// `stages` as `(station code, target seconds)`; errors name `[i].station` or
    /// `[i].target_seconds`, for the caller to put under its own path.
    pub fn parse(stages: &[(String, u32)]) -> Result<Self, ValidationError> {
        if stages.is_empty() {
            return Err(ValidationError::new("stages", "must not be empty"));
        }
        let mut parsed: Vec<Stage> = Vec::with_capacity(stages.len());
        for (i, (code, target)) in stages.iter().enumerate() {
            let station = StationCode::parse(code)
                .map_err(|e| ValidationError::new(format!("stages[{i}].station"), e.rule))?;
            if parsed.iter().any(|s| s.station == station) {
                return Err(ValidationError::new(
                    format!("stages[{i}].station"),
                    "must not repeat a station of the same route",
                ));
            }
            if !(1..=MAX_TARGET_SECONDS).contains(target) {
                return Err(ValidationError::new(
                    format!("stages[{i}].target_seconds"),
                    format!("must be between 1 and {MAX_TARGET_SECONDS}"),
                ));
            }
            parsed.push(Stage {
                station,
                target_seconds: *target,
            });
        }
        Ok(Route(parsed))
    }

    pub fn stages(&self) -> &[Stage] {
        &self.0
    }

    pub fn total_target_seconds(&self) -> u32 {
        self.0.iter().map(|s| s.target_seconds).sum()
    }
}

/// The stations a new pizzeria gets when it names none.
pub fn default_stations() -> Vec<(StationCode, StationName)> {
    [
        ("dough", "Dough"),
        ("topping", "Topping"),
        ("oven", "Oven"),
        ("packing", "Packing"),
    ]
    .into_iter()
    .filter_map(|(code, name)| {
        Some((
            StationCode::parse(code).ok()?,
            StationName::parse(name).ok()?,
        ))
    })
    .collect()
}

/// The route per category a new pizzeria gets. Targets are what a Dodo kitchen aims at: an oven
/// pass takes five minutes for a pizza, four for a side.
pub fn default_routes() -> Vec<(ProductCategory, Route)> {
    let route = |stages: &[(&str, u32)]| {
        let owned: Vec<(String, u32)> = stages.iter().map(|(s, t)| ((*s).to_owned(), *t)).collect();
        Route::parse(&owned).ok()
    };
    [
        (
            ProductCategory::Pizza,
            route(&[
                ("dough", 60),
                ("topping", 90),
                ("oven", 300),
                ("packing", 60),
            ]),
        ),
        (
            ProductCategory::Side,
            route(&[("oven", 240), ("packing", 60)]),
        ),
        (ProductCategory::Drink, route(&[("packing", 30)])),
        (ProductCategory::Sauce, route(&[("packing", 30)])),
        (ProductCategory::Dessert, route(&[("packing", 30)])),
    ]
    .into_iter()
    .filter_map(|(category, route)| Some((category, route?)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(s: &[(&str, u32)]) -> Vec<(String, u32)> {
        s.iter().map(|(a, b)| ((*a).to_owned(), *b)).collect()
    }

    #[test]
    fn defaults_cover_every_category_and_station() {
        let routes = default_routes();
        assert_eq!(routes.len(), ProductCategory::ALL.len());
        let stations: Vec<_> = default_stations().into_iter().map(|(c, _)| c).collect();
        assert_eq!(stations.len(), 4);
        for (_, route) in &routes {
            for stage in route.stages() {
                assert!(stations.contains(&stage.station), "{:?}", stage.station);
            }
        }
        let pizza = &routes[0].1;
        assert_eq!(pizza.total_target_seconds(), 510);
    }

    #[test]
    fn an_empty_route_is_rejected() {
        assert_eq!(Route::parse(&[]).unwrap_err().field, "stages");
    }

    #[test]
    fn a_repeated_station_is_rejected() {
        let err = Route::parse(&stages(&[("oven", 10), ("oven", 10)])).unwrap_err();
        assert_eq!(err.field, "stages[1].station");
    }

    #[test]
    fn targets_must_be_positive_and_sane() {
        let err = Route::parse(&stages(&[("oven", 0)])).unwrap_err();
        assert_eq!(err.field, "stages[0].target_seconds");
        assert!(Route::parse(&stages(&[("oven", 3601)])).is_err());
    }

    #[test]
    fn categories_parse_from_paths() {
        assert_eq!(
            "pizza".parse::<Category>().unwrap().0,
            ProductCategory::Pizza
        );
        assert!("pasta".parse::<Category>().is_err());
    }
}
