//! The 43 participant source fields of seed 001, in its order: display name and key.

pub const SOURCE_FIELDS: [(&str, &str); 43] = [
    ("Postal Address", "address"),
    ("App ID", "appId"),
    ("App Reference", "appReference"),
    ("Code", "code"),
    ("Company Name", "companyName"),
    ("Connection Country", "connectionCountry"),
    ("Country", "country"),
    ("Country Code", "countryCode"),
    ("Custom Checkbox", "customCheckbox"),
    ("Custom Format", "customFormat"),
    ("Custom Text Field", "customText"),
    ("Date", "date"),
    ("Date of Birth", "dob"),
    ("Date With Timezone", "dateWithTimezone"),
    ("Email", "email"),
    ("First Name", "firstName"),
    ("Gender", "gender"),
    ("ID", "id"),
    ("Idunic", "idunic"),
    ("IP Address", "ipAddress"),
    ("Last Name", "lastName"),
    ("Levels Played", "levelsPlayed"),
    ("Locale", "locale"),
    ("Newsletter Opt-In", "optinNewsletter"),
    ("Phone Number", "phoneNumber"),
    ("Played", "played"),
    ("Postal Code", "cp"),
    ("Profile", "profil"),
    ("Profile UID", "profilUid"),
    ("Prize Ref", "prizeRef"),
    ("Prize Title", "prizeTitle"),
    ("Prize UID", "prizeUid"),
    ("Referral", "referral"),
    ("Score", "score"),
    ("Select Value", "selectValue"),
    ("Select Value 2", "selectValue2"),
    ("Session ID", "sessionId"),
    ("Time Taken", "timeTaken"),
    ("City", "town"),
    ("Updated At", "updatedAt"),
    ("Updated At Timestamp", "updatedAtTimeStamp"),
    ("Username", "username"),
    ("Website Address", "website"),
];

pub fn is_source_field(key: &str) -> bool {
    SOURCE_FIELDS.iter().any(|(_, k)| *k == key)
}

pub fn display_name(key: &str) -> Option<&'static str> {
    SOURCE_FIELDS.iter().find(|(_, k)| *k == key).map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_reference_list() {
        // The list in ../shared/reference/providers.md, "Field keys".
        let reference = "address, appId, appReference, code, companyName, connectionCountry, country, countryCode, customCheckbox, \
            customFormat, customText, date, dob, dateWithTimezone, email, firstName, gender, id, idunic, ipAddress, \
            lastName, levelsPlayed, locale, optinNewsletter, phoneNumber, played, cp, profil, profilUid, prizeRef, \
            prizeTitle, prizeUid, referral, score, selectValue, selectValue2, sessionId, timeTaken, town, updatedAt, \
            updatedAtTimeStamp, username, website";
        let keys: Vec<&str> = SOURCE_FIELDS.iter().map(|(_, k)| *k).collect();
        assert_eq!(keys, reference.split(", ").collect::<Vec<_>>());
        assert_eq!(display_name("cp"), Some("Postal Code"));
        assert!(is_source_field("lastName") && !is_source_field("last_name"));
    }
}
