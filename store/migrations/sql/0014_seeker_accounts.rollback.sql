DROP SEQUENCE seekers_registered_row;
DROP TABLE seeker_contacts;
DROP TABLE seeker_accounts;
