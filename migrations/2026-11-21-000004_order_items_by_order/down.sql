DROP INDEX order_items_order_idx;
