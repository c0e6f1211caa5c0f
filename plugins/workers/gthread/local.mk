# Worker plugin gthread (issue 5).
