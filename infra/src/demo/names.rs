//! Made-up names and topics for demo data (no real person's).

pub(super) const FIRST_NAMES: &[&str] = &[
    "Avery", "Blake", "Casey", "Dana", "Eli", "Frankie", "Gale", "Harper", "Indy", "Jules", "Kai",
    "Logan", "Morgan", "Noel", "Oakley", "Parker", "Quinn", "Reese", "Sage", "Tatum", "Uma", "Val",
    "Wren", "Xan", "Yael", "Zion",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "Abbott",
    "Baker",
    "Castillo",
    "Dunn",
    "Ellis",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibarra",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quist",
    "Rossi",
    "Sato",
    "Turner",
    "Ueda",
    "Vargas",
    "Walsh",
    "Xu",
    "Young",
    "Zimmer",
];

pub(super) const GROUP_NAMES: &[&str] = &[
    "Relapse prevention",
    "Coping skills",
    "Early recovery",
    "Mindful recovery",
    "Family matters",
    "Living sober",
];

pub(super) const TOPICS: &[&str] = &[
    "Coping with cravings",
    "Triggers and high-risk situations",
    "Building a support network",
    "Sleep and recovery",
    "Managing stress",
    "Relapse warning signs",
    "Communication skills",
    "Planning for weekends",
];
