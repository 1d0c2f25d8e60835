ALTER TABLE users DROP COLUMN payment_provider;
