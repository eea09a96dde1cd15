"""Stage 5, query: a question understood once — its language, the context of a follow-up, the names
and years that choose documents, its terms, the kind of answer it asks for. No later stage reads its words."""
