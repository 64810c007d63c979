# lab3-paging's make fragment: the student's file(s) as MAKEVAR:file (the grader sets MAKEVAR to a student's copy),
# and its C guests as GUESTDIR:BITS (guest-kernels/GUESTDIR/*.c).
LABS += lab3-paging
lab3-paging_PARTS := LAB3_SRC:lab3_paging.c
lab3-paging_GUESTS := lab3:64
