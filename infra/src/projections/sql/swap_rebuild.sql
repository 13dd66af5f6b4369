-- Swaps the rebuilt tables in (see migrations/*_read_models.sql); returns how many.
SELECT swap_in_rebuilt_read_model($1)
