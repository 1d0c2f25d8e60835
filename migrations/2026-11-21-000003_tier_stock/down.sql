DROP TABLE pending_sales;
ALTER TABLE ticket_tiers
    ADD COLUMN quantity integer,
    ADD COLUMN held integer NOT NULL DEFAULT 0 CHECK (held >= 0),
    ADD COLUMN sold integer NOT NULL DEFAULT 0 CHECK (sold >= 0);
UPDATE ticket_tiers t SET quantity = s.quantity, held = s.held, sold = s.sold
  FROM tier_stock s WHERE s.tier_id = t.id;
ALTER TABLE ticket_tiers
    ALTER COLUMN quantity SET NOT NULL,
    ADD CHECK (quantity > 0),
    ADD CONSTRAINT ticket_tiers_inventory_check CHECK (held + sold <= quantity);
DROP TABLE tier_stock;
